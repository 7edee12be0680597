package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Timed exams (API v1.1) are event-sourced like attempts. Every event of a
// session is on the session's own subject, one per student and quiz:
//
//	quizstream.exams.<student>.<quiz>.<session>
//
// and each is published only if the last event on the student's subjects
// of that quiz (quizstream.exams.<student>.<quiz>.*) is still the one the
// publisher read: a compare-and-set that totally orders a student's
// sessions of a quiz. So a save can never land after the session's
// finalization, a session is finalized once, and two starts cannot both
// open a session. The timers that finalize sessions at their deadline are
// in a stream of their own (ExamStreamConfig).

// Event types and schema versions of the exams streams. Decoders refuse
// any other version: a new version is a new decoder, never a rewrite.
const (
	TypeExamStarted     = "ExamStarted"
	SchemaExamStarted   = 1
	TypeAnswerSaved     = "AnswerSaved"
	SchemaAnswerSaved   = 1
	TypeExamFinalized   = "ExamFinalized"
	SchemaExamFinalized = 1
	TypeExamDue         = "ExamDue"
	SchemaExamDue       = 1
)

// Subject roots of the exams streams.
const (
	// ExamSubjectPrefix roots the session events (stream EXAMS).
	ExamSubjectPrefix = "quizstream.exams"
	// ExamTimerPrefix roots the timers (stream EXAM_TIMERS): schedules
	// under .at, the messages they fire under .due.
	ExamTimerPrefix = "quizstream.examtimers"
)

// ExamSubject returns the subject of a session's events.
func ExamSubject(student, quiz, session uuid.UUID) string {
	return ExamSubjectPrefix + "." + student.String() + "." + quiz.String() + "." + session.String()
}

// ExamQuizSubjects returns the wildcard subject of a student's sessions of
// a quiz: the subject of their compare-and-set.
func ExamQuizSubjects(student, quiz uuid.UUID) string {
	return ExamSubjectPrefix + "." + student.String() + "." + quiz.String() + ".*"
}

// ExamSessionSubjects returns a wildcard subject matching exactly one
// session's events, when its quiz is not known.
func ExamSessionSubjects(student, session uuid.UUID) string {
	return ExamSubjectPrefix + "." + student.String() + ".*." + session.String()
}

// ExamStudentSubjects returns the wildcard subject of all of a student's sessions.
func ExamStudentSubjects(student uuid.UUID) string {
	return ExamSubjectPrefix + "." + student.String() + ".>"
}

// ExamTimerSubject is where a session's schedule waits; a later schedule
// for the same session replaces it.
func ExamTimerSubject(session uuid.UUID) string { return ExamTimerPrefix + ".at." + session.String() }

// ExamDueSubject returns the subject on which a session's timer fires.
func ExamDueSubject(session uuid.UUID) string { return ExamTimerPrefix + ".due." + session.String() }

// Who finalized a session (ExamFinalized.By).
const (
	FinalizedByStudent  = "student"
	FinalizedByDeadline = "deadline"
)

// ExamQuestion is one question of a session with its choices and which
// are correct: the quiz's answer key as it was when the session started,
// so that grading a session needs no content and a content edit during an
// exam changes nothing for the sessions under way.
type ExamQuestion struct {
	ID      uuid.UUID    `json:"id"`
	Choices []ExamChoice `json:"choices"`
}

// ExamChoice is one choice of an ExamQuestion.
type ExamChoice struct {
	ID      uuid.UUID `json:"id"`
	Correct bool      `json:"correct,omitempty"`
}

// ExamStarted is the fact that a student started a session of a timed
// quiz. Its deadline is the server's, fixed at the start.
type ExamStarted struct {
	SessionID      uuid.UUID `json:"session_id"`
	StudentID      uuid.UUID `json:"student_id"`
	QuizID         uuid.UUID `json:"quiz_id"`
	CourseID       uuid.UUID `json:"course_id"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	// Number counts the student's sessions of the quiz, this one included.
	Number    int       `json:"number"`
	StartedAt time.Time `json:"started_at"`
	// Deadline is the earlier of StartedAt + the time limit and the quiz's closes_at.
	Deadline time.Time `json:"deadline"`
	// GraceS is how many seconds after Deadline saves and submits still count.
	GraceS    int            `json:"grace_s"`
	Questions []ExamQuestion `json:"questions"`
}

// Cutoff returns the instant from which saves and submits no longer count:
// the deadline plus the grace.
func (e ExamStarted) Cutoff() time.Time { return e.Deadline.Add(time.Duration(e.GraceS) * time.Second) }

// Question returns the question with this id, and whether the session has it.
func (e ExamStarted) Question(id uuid.UUID) (ExamQuestion, bool) {
	for _, q := range e.Questions {
		if q.ID == id {
			return q, true
		}
	}
	return ExamQuestion{}, false
}

// AnswerSaved is the fact that a session saved an answer: the choice, or
// none (ChoiceID nil) when the student cleared it. For each question the
// save with the highest Seq wins, whatever order saves are read in.
type AnswerSaved struct {
	SessionID  uuid.UUID  `json:"session_id"`
	StudentID  uuid.UUID  `json:"student_id"`
	QuizID     uuid.UUID  `json:"quiz_id"`
	QuestionID uuid.UUID  `json:"question_id"`
	ChoiceID   *uuid.UUID `json:"choice_id"`
	Seq        int64      `json:"seq"`
	SavedAt    time.Time  `json:"saved_at"`
}

// Supersedes reports whether a replaces b as the answer to their question:
// the rule every reader of saves applies (the projection's SQL too).
func (a AnswerSaved) Supersedes(b AnswerSaved) bool { return a.Seq > b.Seq }

// ExamFinalized is the fact that a session ended, by the student's submit
// or by its deadline, graded from its saved answers. It becomes the
// AttemptSubmitted that Attempt returns.
type ExamFinalized struct {
	SessionID   uuid.UUID `json:"session_id"`
	StudentID   uuid.UUID `json:"student_id"`
	QuizID      uuid.UUID `json:"quiz_id"`
	CourseID    uuid.UUID `json:"course_id"`
	By          string    `json:"by"`
	AttemptID   uuid.UUID `json:"attempt_id"`
	Answers     []Answer  `json:"answers"`
	AnswersHash []byte    `json:"answers_hash"`
	Score       int       `json:"score"`
	MaxScore    int       `json:"max_score"`
	// SubmittedAt is when the submit reached the API, or the deadline.
	SubmittedAt time.Time `json:"submitted_at"`
	// FinalizedAt is when the finalization was published.
	FinalizedAt time.Time `json:"finalized_at"`
}

// Attempt returns the attempt a finalized session becomes. Its id derives
// from the session's, so whoever publishes it (the submit, the deadline's
// finalizer, a retry) publishes the same attempt, and the attempts
// stream's per-attempt guard keeps one.
func (f ExamFinalized) Attempt() AttemptSubmitted {
	return AttemptSubmitted{
		AttemptID: f.AttemptID, StudentID: f.StudentID, QuizID: f.QuizID, CourseID: f.CourseID,
		Answers: f.Answers, AnswersHash: f.AnswersHash, Score: f.Score, MaxScore: f.MaxScore,
		SubmittedAt: f.SubmittedAt,
	}
}

// ExamDue is a session's timer: it fires at DueAt (the deadline, the grace
// and a settling delay after it) on ExamDueSubject, and the finalizer then
// finalizes the session unless it ended before.
type ExamDue struct {
	SessionID uuid.UUID `json:"session_id"`
	StudentID uuid.UUID `json:"student_id"`
	QuizID    uuid.UUID `json:"quiz_id"`
	DueAt     time.Time `json:"due_at"`
}

var (
	sessionNamespace     = uuid.MustParse("8a4f2c1e-5b3d-4e6f-9a7b-0c1d2e3f4a5b")
	examAttemptNamespace = uuid.MustParse("c7e1b2a3-9d4f-4a5b-8c6d-1e2f3a4b5c6d")
)

// SessionID returns the session id for a start: derived from (student, key)
// when the client sent an idempotency key, so that every retry maps to the
// same session, and random otherwise.
func SessionID(student uuid.UUID, idempotencyKey string) uuid.UUID {
	if idempotencyKey == "" {
		return uuid.New()
	}
	return uuid.NewSHA1(sessionNamespace, append(student[:], idempotencyKey...))
}

// ExamAttemptID returns the id of the attempt a session becomes.
func ExamAttemptID(session uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(examAttemptNamespace, session[:])
}

// ExamEvent is one event of a session: exactly one of its fields is set.
type ExamEvent struct {
	Started   *ExamStarted
	Saved     *AnswerSaved
	Finalized *ExamFinalized
}

// IDs returns the event's student, quiz and session.
func (e ExamEvent) IDs() (student, quiz, session uuid.UUID) {
	switch {
	case e.Started != nil:
		return e.Started.StudentID, e.Started.QuizID, e.Started.SessionID
	case e.Saved != nil:
		return e.Saved.StudentID, e.Saved.QuizID, e.Saved.SessionID
	case e.Finalized != nil:
		return e.Finalized.StudentID, e.Finalized.QuizID, e.Finalized.SessionID
	}
	return uuid.Nil, uuid.Nil, uuid.Nil
}

// Subject returns the event's own subject.
func (e ExamEvent) Subject() string {
	student, quiz, session := e.IDs()
	return ExamSubject(student, quiz, session)
}

// SessionID returns the id of the event's session.
func (e ExamEvent) SessionID() uuid.UUID { _, _, s := e.IDs(); return s }

// MsgID is the event's Nats-Msg-Id: one per start, per save (session,
// question, seq) and per finalization.
func (e ExamEvent) MsgID() string {
	switch {
	case e.Started != nil:
		return "start:" + e.Started.SessionID.String()
	case e.Saved != nil:
		return fmt.Sprintf("save:%s:%s:%d", e.Saved.SessionID, e.Saved.QuestionID, e.Saved.Seq)
	default:
		return "final:" + e.Finalized.SessionID.String()
	}
}

type examEnvelope struct {
	Type   string `json:"type"`
	Schema int    `json:"schema"`
}

// EncodeExam returns the wire form of e, or an error when no field of e is set.
func EncodeExam(e ExamEvent) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	switch {
	case e.Started != nil:
		b, err = json.Marshal(struct {
			examEnvelope
			*ExamStarted
		}{examEnvelope{TypeExamStarted, SchemaExamStarted}, e.Started})
	case e.Saved != nil:
		b, err = json.Marshal(struct {
			examEnvelope
			*AnswerSaved
		}{examEnvelope{TypeAnswerSaved, SchemaAnswerSaved}, e.Saved})
	case e.Finalized != nil:
		b, err = json.Marshal(struct {
			examEnvelope
			*ExamFinalized
		}{examEnvelope{TypeExamFinalized, SchemaExamFinalized}, e.Finalized})
	default:
		return nil, errors.New("encode exam event: no event")
	}
	if err != nil {
		return nil, fmt.Errorf("encode exam event: %w", err)
	}
	return b, nil
}

// DecodeExam parses and checks the wire form of a session event; it
// returns an error wrapping ErrUndecodable for anything else, an unknown
// type or schema version included.
func DecodeExam(data []byte) (ExamEvent, error) {
	var env examEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return ExamEvent{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	var e ExamEvent
	var err error
	switch env.Type {
	case TypeExamStarted:
		e.Started = new(ExamStarted)
		err = decodeExamBody(data, env, SchemaExamStarted, e.Started)
		if err == nil {
			err = e.Started.check()
		}
	case TypeAnswerSaved:
		e.Saved = new(AnswerSaved)
		err = decodeExamBody(data, env, SchemaAnswerSaved, e.Saved)
		if err == nil {
			err = e.Saved.check()
		}
	case TypeExamFinalized:
		e.Finalized = new(ExamFinalized)
		err = decodeExamBody(data, env, SchemaExamFinalized, e.Finalized)
		if err == nil {
			err = e.Finalized.check()
		}
	default:
		return ExamEvent{}, fmt.Errorf("%w: type %q", ErrUndecodable, env.Type)
	}
	if err != nil {
		return ExamEvent{}, err
	}
	return e, nil
}

// DecodeExamAt is DecodeExam for a message stored under subject: it also
// refuses (with an error wrapping ErrUndecodable) an event whose own
// subject is not subject, since the compare-and-set and the reads by
// subject would then miss it.
func DecodeExamAt(subject string, data []byte) (ExamEvent, error) {
	e, err := DecodeExam(data)
	if err != nil {
		return ExamEvent{}, err
	}
	if own := e.Subject(); subject != own {
		return ExamEvent{}, fmt.Errorf("%w: subject %s is not the event's own %s", ErrUndecodable, subject, own)
	}
	return e, nil
}

func decodeExamBody(data []byte, env examEnvelope, schema int, v any) error {
	if env.Schema != schema {
		return fmt.Errorf("%w: %s schema version %d", ErrUndecodable, env.Type, env.Schema)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUndecodable, env.Type, err)
	}
	return nil
}

func (e *ExamStarted) check() error {
	switch {
	case e.SessionID == uuid.Nil, e.StudentID == uuid.Nil, e.QuizID == uuid.Nil, e.CourseID == uuid.Nil:
		return fmt.Errorf("%w: %s: missing id", ErrUndecodable, TypeExamStarted)
	case e.StartedAt.IsZero(), e.Deadline.Before(e.StartedAt):
		return fmt.Errorf("%w: %s: started_at %s, deadline %s", ErrUndecodable, TypeExamStarted, e.StartedAt, e.Deadline)
	case e.Number < 1, e.GraceS < 0:
		return fmt.Errorf("%w: %s: number %d, grace_s %d", ErrUndecodable, TypeExamStarted, e.Number, e.GraceS)
	case len(e.Questions) > MaxQuestions:
		return fmt.Errorf("%w: %s: %d questions", ErrUndecodable, TypeExamStarted, len(e.Questions))
	case utf8.RuneCountInString(e.IdempotencyKey) > MaxIdempotencyKey:
		return fmt.Errorf("%w: %s: idempotency_key over %d characters", ErrUndecodable, TypeExamStarted, MaxIdempotencyKey)
	}
	return nil
}

func (e *AnswerSaved) check() error {
	switch {
	case e.SessionID == uuid.Nil, e.StudentID == uuid.Nil, e.QuizID == uuid.Nil, e.QuestionID == uuid.Nil:
		return fmt.Errorf("%w: %s: missing id", ErrUndecodable, TypeAnswerSaved)
	case e.Seq < 1:
		return fmt.Errorf("%w: %s: seq %d", ErrUndecodable, TypeAnswerSaved, e.Seq)
	case e.SavedAt.IsZero():
		return fmt.Errorf("%w: %s: missing saved_at", ErrUndecodable, TypeAnswerSaved)
	}
	return nil
}

func (e *ExamFinalized) check() error {
	switch {
	case e.SessionID == uuid.Nil, e.StudentID == uuid.Nil, e.QuizID == uuid.Nil, e.CourseID == uuid.Nil:
		return fmt.Errorf("%w: %s: missing id", ErrUndecodable, TypeExamFinalized)
	case e.AttemptID != ExamAttemptID(e.SessionID):
		return fmt.Errorf("%w: %s: attempt_id is not the session's", ErrUndecodable, TypeExamFinalized)
	case e.By != FinalizedByStudent && e.By != FinalizedByDeadline:
		return fmt.Errorf("%w: %s: by %q", ErrUndecodable, TypeExamFinalized, e.By)
	case e.SubmittedAt.IsZero():
		return fmt.Errorf("%w: %s: missing submitted_at", ErrUndecodable, TypeExamFinalized)
	case e.MaxScore < 0 || e.MaxScore > MaxQuestions || e.Score < 0 || e.Score > e.MaxScore:
		return fmt.Errorf("%w: %s: score %d of %d", ErrUndecodable, TypeExamFinalized, e.Score, e.MaxScore)
	case len(e.Answers) > MaxQuestions:
		return fmt.Errorf("%w: %s: %d answers", ErrUndecodable, TypeExamFinalized, len(e.Answers))
	case len(e.AnswersHash) != sha256.Size:
		return fmt.Errorf("%w: %s: answers_hash", ErrUndecodable, TypeExamFinalized)
	}
	if e.Answers == nil {
		e.Answers = []Answer{}
	}
	return nil
}

// EncodeExamDue returns the wire form of a timer.
func EncodeExamDue(d ExamDue) ([]byte, error) {
	b, err := json.Marshal(struct {
		examEnvelope
		ExamDue
	}{examEnvelope{TypeExamDue, SchemaExamDue}, d})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", TypeExamDue, err)
	}
	return b, nil
}

// DecodeExamDueAt parses a timer fired on subject; it returns an error
// wrapping ErrUndecodable for anything else.
func DecodeExamDueAt(subject string, data []byte) (ExamDue, error) {
	var v struct {
		examEnvelope
		ExamDue
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return ExamDue{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	d := v.ExamDue
	switch {
	case v.Type != TypeExamDue || v.Schema != SchemaExamDue:
		return ExamDue{}, fmt.Errorf("%w: %s schema version %d", ErrUndecodable, v.Type, v.Schema)
	case d.SessionID == uuid.Nil || d.StudentID == uuid.Nil || d.QuizID == uuid.Nil || d.DueAt.IsZero():
		return ExamDue{}, fmt.Errorf("%w: %s: missing field", ErrUndecodable, TypeExamDue)
	case subject != ExamDueSubject(d.SessionID):
		return ExamDue{}, fmt.Errorf("%w: subject %s is not the timer's own", ErrUndecodable, subject)
	}
	return d, nil
}

// ExamSession is a session folded from its events. Folding is
// order-independent (the first start and the first final are kept; for
// each question the save that supersedes the others), so events may come
// from the stream, the database or both. Its methods never modify a
// session that others may hold: Clone first.
type ExamSession struct {
	// Started is nil until the session's ExamStarted is folded.
	Started *ExamStarted
	// Answers holds each question's winning save.
	Answers map[uuid.UUID]AnswerSaved
	// Final is nil while the session is open.
	Final *ExamFinalized
	// LastSeq is the highest stream sequence folded.
	LastSeq uint64
}

// NewExamSession returns an empty session.
func NewExamSession() *ExamSession { return &ExamSession{Answers: map[uuid.UUID]AnswerSaved{}} }

// Clone returns a copy of s that can be changed without changing s.
func (s *ExamSession) Clone() *ExamSession {
	c := *s
	c.Answers = maps.Clone(s.Answers)
	if c.Answers == nil {
		c.Answers = map[uuid.UUID]AnswerSaved{}
	}
	return &c
}

// Apply folds the event stored at seq into s.
func (s *ExamSession) Apply(e ExamEvent, seq uint64) {
	switch {
	case e.Started != nil:
		if s.Started == nil {
			s.Started = e.Started
		}
	case e.Saved != nil:
		if cur, ok := s.Answers[e.Saved.QuestionID]; !ok || e.Saved.Supersedes(cur) {
			s.Answers[e.Saved.QuestionID] = *e.Saved
		}
	case e.Finalized != nil:
		if s.Final == nil {
			s.Final = e.Finalized
		}
	}
	s.LastSeq = max(s.LastSeq, seq)
}

// Finalization returns the ExamFinalized that ends s now: its answers are
// the winning saves that name a choice, graded against the session's own
// answer key, in the order of its questions. by is FinalizedByStudent or
// FinalizedByDeadline; at is when the submit reached the API, or the
// deadline. s must have been started.
func (s *ExamSession) Finalization(by string, at time.Time) ExamFinalized {
	st := s.Started
	answers := []Answer{}
	score := 0
	for _, q := range st.Questions {
		a, ok := s.Answers[q.ID]
		if !ok || a.ChoiceID == nil {
			continue
		}
		i := slices.IndexFunc(q.Choices, func(c ExamChoice) bool { return c.ID == *a.ChoiceID })
		if i < 0 {
			continue // the API accepts only the question's choices
		}
		answers = append(answers, Answer{QuestionID: q.ID.String(), ChoiceID: a.ChoiceID.String()})
		if q.Choices[i].Correct {
			score++
		}
	}
	return ExamFinalized{
		SessionID: st.SessionID, StudentID: st.StudentID, QuizID: st.QuizID, CourseID: st.CourseID,
		By: by, AttemptID: ExamAttemptID(st.SessionID),
		Answers: answers, AnswersHash: HashAnswers(st.QuizID, answers), Score: score, MaxScore: len(st.Questions),
		SubmittedAt: at.UTC().Truncate(time.Microsecond), FinalizedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}
