package events

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func sampleEvent() AttemptSubmitted {
	answers := []Answer{{QuestionID: "q1", ChoiceID: "c1"}, {QuestionID: "q2", ChoiceID: "c3"}}
	quiz := uuid.New()
	return AttemptSubmitted{
		AttemptID:      uuid.New(),
		StudentID:      uuid.New(),
		QuizID:         quiz,
		CourseID:       uuid.New(),
		IdempotencyKey: "key-1",
		Answers:        answers,
		AnswersHash:    HashAnswers(quiz, answers),
		Score:          1,
		MaxScore:       10,
		SubmittedAt:    time.Date(2026, 11, 26, 9, 30, 0, 123456000, time.UTC),
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	e := sampleEvent()
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.AttemptID != e.AttemptID || got.StudentID != e.StudentID || got.QuizID != e.QuizID ||
		got.CourseID != e.CourseID || got.IdempotencyKey != e.IdempotencyKey || got.Score != e.Score ||
		got.MaxScore != e.MaxScore || !got.SubmittedAt.Equal(e.SubmittedAt) ||
		!bytes.Equal(got.AnswersHash, e.AnswersHash) || len(got.Answers) != len(e.Answers) {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", got, e)
	}
	for i := range e.Answers {
		if got.Answers[i] != e.Answers[i] {
			t.Fatalf("answer %d: got %+v, want %+v", i, got.Answers[i], e.Answers[i])
		}
	}
	if !strings.Contains(string(b), `"schema":1`) || !strings.Contains(string(b), `"type":"AttemptSubmitted"`) {
		t.Fatalf("wire form lacks its type and schema: %s", b)
	}
}

func TestDecodeRefuses(t *testing.T) {
	e := sampleEvent()
	good, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(good); err != nil {
		t.Fatalf("the unaltered event must decode: %v", err)
	}
	replace := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("%q is not in the wire form", old)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	for name, data := range map[string][]byte{
		"not json":        []byte("not json"),
		"empty":           nil,
		"other type":      replace(`"type":"AttemptSubmitted"`, `"type":"QuizDeleted"`),
		"unknown schema":  replace(`"schema":1`, `"schema":2`),
		"no attempt id":   replace(e.AttemptID.String(), uuid.Nil.String()),
		"score over max":  replace(`"score":1`, `"score":11`),
		"negative score":  replace(`"score":1`, `"score":-1`),
		"no submitted_at": replace(`"submitted_at":"2026-11-26T09:30:00.123456Z"`, `"submitted_at":"0001-01-01T00:00:00Z"`),
		"wrong type":      replace(`"score":1`, `"score":"one"`),
		"huge max_score":  replace(`"max_score":10`, `"max_score":3000000000`),
		"key too long":    replace(`"idempotency_key":"key-1"`, `"idempotency_key":"`+strings.Repeat("k", 129)+`"`),
		"trailing data":   append(append([]byte{}, good...), ` {}`...),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(data); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("Decode(%s) = %v, want ErrUndecodable", data, err)
			}
		})
	}
}

func TestAttemptID(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	if first, again := AttemptID(a, "k"), AttemptID(a, "k"); first != again {
		t.Fatal("the same student and key must give the same id")
	}
	if AttemptID(a, "k") == AttemptID(b, "k") {
		t.Fatal("a key belongs to one student: two students must get different ids")
	}
	if AttemptID(a, "k") == AttemptID(a, "k2") {
		t.Fatal("different keys must give different ids")
	}
	if first, again := AttemptID(a, ""), AttemptID(a, ""); first == again {
		t.Fatal("without a key every submission is a new attempt")
	}
}

func TestHashAnswersIsASet(t *testing.T) {
	quiz := uuid.New()
	x := []Answer{{"q1", "c1"}, {"q2", "c2"}, {"q3", "c3"}}
	y := []Answer{{"q3", "c3"}, {"q1", "c1"}, {"q2", "c2"}}
	if !bytes.Equal(HashAnswers(quiz, x), HashAnswers(quiz, y)) {
		t.Fatal("order must not matter")
	}
	if bytes.Equal(HashAnswers(quiz, x), HashAnswers(quiz, x[:2])) {
		t.Fatal("fewer answers must differ")
	}
	if bytes.Equal(HashAnswers(quiz, x), HashAnswers(uuid.New(), x)) {
		t.Fatal("another quiz must differ")
	}
	z := []Answer{{"q1", "c2"}, {"q2", "c1"}, {"q3", "c3"}}
	if bytes.Equal(HashAnswers(quiz, x), HashAnswers(quiz, z)) {
		t.Fatal("other choices must differ")
	}
}

func TestSubjects(t *testing.T) {
	e := sampleEvent()
	want := "quizstream.attempts." + e.StudentID.String() + "." + e.AttemptID.String()
	if e.Subject() != want {
		t.Fatalf("Subject() = %q, want %q", e.Subject(), want)
	}
	if StudentSubjects(e.StudentID) != "quizstream.attempts."+e.StudentID.String()+".*" {
		t.Fatalf("StudentSubjects = %q", StudentSubjects(e.StudentID))
	}
}

// DecodeAt accepts an event only under its own subject: under another
// student's or another attempt's subject it is undecodable, and a message
// that does not decode fails as Decode does, whatever its subject.
func TestDecodeAt(t *testing.T) {
	e := sampleEvent()
	data, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAt(e.Subject(), data)
	if err != nil {
		t.Fatalf("DecodeAt under its own subject: %v", err)
	}
	if got.AttemptID != e.AttemptID || got.StudentID != e.StudentID || got.Score != e.Score {
		t.Fatalf("DecodeAt = %+v, want %+v", got, e)
	}
	for name, tc := range map[string]struct {
		subject string
		data    []byte
		want    string
	}{
		"another student": {AttemptSubject(uuid.New(), e.AttemptID), data, "does not match"},
		"another attempt": {AttemptSubject(e.StudentID, uuid.New()), data, "does not match"},
		"a wildcard":      {StudentSubjects(e.StudentID), data, "does not match"},
		"not json":        {e.Subject(), []byte("{garbage"), "undecodable"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeAt(tc.subject, tc.data)
			if !errors.Is(err, ErrUndecodable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeAt(%s) = %v, want ErrUndecodable saying %q", tc.subject, err, tc.want)
			}
		})
	}
}
