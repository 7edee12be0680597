// Package events defines quizstream's event families as data: the event
// types of attempts and exam sessions, their subjects, their encoding and
// schema versions, and the notices between API instances. It knows neither
// HTTP nor SQL, and holds no stream machinery (see streams, eventlog, tail).
package events

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	segjson "github.com/segmentio/encoding/json"
)

// TypeAttemptSubmitted names the AttemptSubmitted event on the wire.
const TypeAttemptSubmitted = "AttemptSubmitted"

// SchemaAttemptSubmitted is the current schema version of AttemptSubmitted.
// Decode refuses any other: a new version is a new decoder, never a
// rewrite of stored events.
const SchemaAttemptSubmitted = 1

// SubjectPrefix roots every attempt subject.
const SubjectPrefix = "quizstream.attempts"

// Answer is one answered question.
type Answer struct {
	QuestionID string `json:"question_id"`
	ChoiceID   string `json:"choice_id"`
}

// AttemptSubmitted is the fact that the API accepted a graded quiz attempt.
// Score and MaxScore are part of the fact, so that a replay after a content
// edit rebuilds the same rows.
type AttemptSubmitted struct {
	AttemptID      uuid.UUID `json:"attempt_id"`
	StudentID      uuid.UUID `json:"student_id"`
	QuizID         uuid.UUID `json:"quiz_id"`
	CourseID       uuid.UUID `json:"course_id"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Answers        []Answer  `json:"answers"`
	AnswersHash    []byte    `json:"answers_hash"`
	Score          int       `json:"score"`
	MaxScore       int       `json:"max_score"`
	SubmittedAt    time.Time `json:"submitted_at"`
}

type envelope struct {
	Type   string `json:"type"`
	Schema int    `json:"schema"`
	AttemptSubmitted
}

// Subject returns the event's own subject: one per attempt, under one per
// student, so that a student's attempts are a wildcard lookup and the
// stream can refuse a second copy of an attempt.
func (e AttemptSubmitted) Subject() string { return AttemptSubject(e.StudentID, e.AttemptID) }

// AttemptSubject returns the subject of one attempt of one student.
func AttemptSubject(student, attempt uuid.UUID) string {
	return SubjectPrefix + "." + student.String() + "." + attempt.String()
}

// StudentSubjects returns the wildcard subject matching every attempt of a student.
func StudentSubjects(student uuid.UUID) string {
	return SubjectPrefix + "." + student.String() + ".*"
}

// Bounds that Decode enforces, so that a decoded event always fits its row.
const (
	// MaxQuestions bounds max_score and the number of answers.
	MaxQuestions = 10000
	// MaxIdempotencyKey is the HTTP contract's limit on an Idempotency-Key, in characters.
	MaxIdempotencyKey = 128
)

// ErrUndecodable wraps every Decode failure: such a message can never be
// stored, however often it is retried.
var ErrUndecodable = errors.New("undecodable event")

// Encode returns the wire form of e.
func Encode(e AttemptSubmitted) ([]byte, error) {
	b, err := json.Marshal(envelope{Type: TypeAttemptSubmitted, Schema: SchemaAttemptSubmitted, AttemptSubmitted: e})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", TypeAttemptSubmitted, err)
	}
	return b, nil
}

// Decode parses and checks the wire form of an AttemptSubmitted event; it
// returns an error wrapping ErrUndecodable for anything else, an unknown
// schema version included. It parses with github.com/segmentio/encoding,
// which accepts what encoding/json accepts, to the same values, at a fifth
// of the cost (FuzzDecodeMatchesEncodingJSON holds it to that): every
// worker and every API instance decodes every event.
func Decode(data []byte) (AttemptSubmitted, error) {
	return decode(data, segjson.Unmarshal)
}

func decode(data []byte, unmarshal func([]byte, any) error) (AttemptSubmitted, error) {
	var env envelope
	if err := unmarshal(data, &env); err != nil {
		return AttemptSubmitted{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	switch {
	case env.Type != TypeAttemptSubmitted:
		return AttemptSubmitted{}, fmt.Errorf("%w: type %q", ErrUndecodable, env.Type)
	case env.Schema != SchemaAttemptSubmitted:
		return AttemptSubmitted{}, fmt.Errorf("%w: %s schema version %d", ErrUndecodable, env.Type, env.Schema)
	}
	e := env.AttemptSubmitted
	switch {
	case e.AttemptID == uuid.Nil, e.StudentID == uuid.Nil, e.QuizID == uuid.Nil, e.CourseID == uuid.Nil:
		return AttemptSubmitted{}, fmt.Errorf("%w: missing id", ErrUndecodable)
	case e.SubmittedAt.IsZero():
		return AttemptSubmitted{}, fmt.Errorf("%w: missing submitted_at", ErrUndecodable)
	case e.MaxScore < 0 || e.MaxScore > MaxQuestions || e.Score < 0 || e.Score > e.MaxScore:
		return AttemptSubmitted{}, fmt.Errorf("%w: score %d of %d", ErrUndecodable, e.Score, e.MaxScore)
	case len(e.Answers) > MaxQuestions:
		return AttemptSubmitted{}, fmt.Errorf("%w: %d answers", ErrUndecodable, len(e.Answers))
	case utf8.RuneCountInString(e.IdempotencyKey) > MaxIdempotencyKey:
		return AttemptSubmitted{}, fmt.Errorf("%w: idempotency_key over %d characters", ErrUndecodable, MaxIdempotencyKey)
	case len(e.AnswersHash) != sha256.Size:
		return AttemptSubmitted{}, fmt.Errorf("%w: answers_hash", ErrUndecodable)
	}
	if e.Answers == nil {
		e.Answers = []Answer{}
	}
	return e, nil
}

// DecodeAt is Decode for a message stored under subject: it also refuses
// (with an error wrapping ErrUndecodable) an event whose own subject is
// not subject, since the stream's per-subject guards and a student's
// wildcard lookups would then miss it.
func DecodeAt(subject string, data []byte) (AttemptSubmitted, error) {
	e, err := Decode(data)
	if err != nil {
		return AttemptSubmitted{}, err
	}
	if subject != e.Subject() {
		return AttemptSubmitted{}, fmt.Errorf("%w: subject %s does not match attempt %s of student %s",
			ErrUndecodable, subject, e.AttemptID, e.StudentID)
	}
	return e, nil
}

// attemptNamespace roots attempt ids derived from idempotency keys.
var attemptNamespace = uuid.MustParse("3b0e7f5c-2a41-4c5e-8f51-9c7d2e6a1b40")

// AttemptID returns the attempt id for a submission: derived from (student,
// key) when the client sent an idempotency key, so that every retry maps to
// the same id, and random otherwise.
func AttemptID(student uuid.UUID, idempotencyKey string) uuid.UUID {
	if idempotencyKey == "" {
		return uuid.New()
	}
	return uuid.NewSHA1(attemptNamespace, append(student[:], idempotencyKey...))
}

// HashAnswers returns the fingerprint of a submission: its quiz and its
// answers as a set, so that the order of the answers does not matter.
func HashAnswers(quiz uuid.UUID, answers []Answer) []byte {
	pairs := make([]string, len(answers))
	for i, a := range answers {
		pairs[i] = a.QuestionID + "=" + a.ChoiceID
	}
	slices.Sort(pairs)
	h := sha256.New()
	h.Write(quiz[:])
	h.Write([]byte(strings.Join(pairs, "\n")))
	return h.Sum(nil)
}

// ParseAttemptSubject returns the student and attempt of an attempt's
// subject (AttemptSubject), or false when subject is not one.
func ParseAttemptSubject(subject string) (student, attempt uuid.UUID, ok bool) {
	rest, found := strings.CutPrefix(subject, SubjectPrefix+".")
	if !found {
		return uuid.Nil, uuid.Nil, false
	}
	s, a, found := strings.Cut(rest, ".")
	if !found {
		return uuid.Nil, uuid.Nil, false
	}
	var err error
	if student, err = uuid.Parse(s); err != nil {
		return uuid.Nil, uuid.Nil, false
	}
	if attempt, err = uuid.Parse(a); err != nil {
		return uuid.Nil, uuid.Nil, false
	}
	return student, attempt, true
}
