package exams_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

var testNamespace = uuid.MustParse("2f6c8e0a-4b1d-4c3e-9f5a-7b8c9d0e1f2a")

// addExam adds a course holding one timed quiz of 10 questions of 4
// choices (the correct one at index question%4) to the stack's content,
// as shape changes it from a 10-minute limit with no other rule, and
// returns the quiz. Instances load content when they start: add exams
// first.
func addExam(t testing.TB, s *apptest.Stack, name string, shape func(*store.Quiz)) store.Quiz {
	t.Helper()
	id := func(n string) uuid.UUID { return uuid.NewSHA1(testNamespace, []byte(name+"/"+n)) }
	course := store.Course{ID: id("course"), Slug: "test-" + name, Title: "Test " + name, Description: "A test exam."}
	q := store.Quiz{ID: id("quiz"), CourseID: course.ID, Title: "Exam " + name, TimeLimit: 10 * time.Minute}
	for u := range 10 {
		qu := store.Question{ID: id(fmt.Sprintf("q%d", u)), Prompt: fmt.Sprintf("Question %d?", u+1)}
		for h := range 4 {
			qu.Choices = append(qu.Choices, store.Choice{ID: id(fmt.Sprintf("q%d/c%d", u, h)), Text: fmt.Sprintf("%c", 'A'+h), Correct: h == u%4})
		}
		q.Questions = append(q.Questions, qu)
	}
	if shape != nil {
		shape(&q)
	}
	course.Quizzes = []store.Quiz{q}
	if _, err := s.Store.SaveContent(t.Context(), []store.Course{course}); err != nil {
		t.Fatalf("add exam %s: %v", name, err)
	}
	return q
}

// seconds returns a duration pointer, for store.Quiz.Grace.
func seconds(n int) *time.Duration {
	d := time.Duration(n) * time.Second
	return &d
}

// choice returns the id of choice h of question u of q.
func choice(q store.Quiz, u, h int) string { return q.Questions[u].Choices[h].ID.String() }

// correct returns the index of question u's correct choice.
func correct(q store.Quiz, u int) int {
	for h, ch := range q.Questions[u].Choices {
		if ch.Correct {
			return h
		}
	}
	return -1
}

// grade is the score of a session whose winning saves are answers
// (question id -> choice id, "" for a cleared answer).
func grade(q store.Quiz, answers map[string]string) int {
	score := 0
	for _, qu := range q.Questions {
		for _, ch := range qu.Choices {
			if ch.Correct && answers[qu.ID.String()] == ch.ID.String() {
				score++
			}
		}
	}
	return score
}

// saved returns a session's answers as grade takes them.
func saved(s client.Session) map[string]string {
	out := map[string]string{}
	for _, a := range s.Answers {
		if a.ChoiceID != nil {
			out[a.QuestionID] = *a.ChoiceID
		} else {
			out[a.QuestionID] = ""
		}
	}
	return out
}

// clock is a controllable clock for api.ExamConfig.Now: real time shifted
// by an offset, or a fixed instant.
type clock struct {
	offset atomic.Int64
	fixed  atomic.Pointer[time.Time]
}

func (c *clock) Now() time.Time {
	if t := c.fixed.Load(); t != nil {
		return *t
	}
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// Shift makes the clock run d ahead of real time (behind when negative).
func (c *clock) Shift(d time.Duration) { c.fixed.Store(nil); c.offset.Store(int64(d)) }

// Set stops the clock at t.
func (c *clock) Set(t time.Time) { c.fixed.Store(&t) }

func ptr[T any](v T) *T { return &v }
func count(t testing.TB, s *apptest.Stack, sql string, args ...any) int {
	t.Helper()
	return storetest.Int(t, s.DB, sql, args...)
}

// examLog is the test's own view of the exams streams.
func examLog(t testing.TB, s *apptest.Stack) *eventlog.ExamLog {
	t.Helper()
	l, err := eventlog.NewExamLog(t.Context(), s.JS, streams.ExamStreamConfig{})
	if err != nil {
		t.Fatalf("exam log: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// waitExamsStored waits until the exam writers have stored every session
// event in the stream.
func waitExamsStored(t testing.TB, s *apptest.Stack, l *eventlog.ExamLog, timeout time.Duration) {
	t.Helper()
	apptest.WaitFor(t, timeout, "the exam writers to store every session event", func() bool {
		st, err := s.JS.Stream(t.Context(), l.Config().Name)
		if err != nil {
			return false
		}
		info, err := st.Info(t.Context())
		if err != nil {
			return false
		}
		floor, err := l.AckFloor(t.Context())
		return err == nil && floor >= info.State.LastSeq
	})
}

// finals returns every ExamFinalized in the stream, by session.
func finals(t testing.TB, l *eventlog.ExamLog, sessions []uuid.UUID, students []uuid.UUID) map[uuid.UUID][]events.ExamFinalized {
	t.Helper()
	out := map[uuid.UUID][]events.ExamFinalized{}
	for i, id := range sessions {
		msgs, err := l.Events(t.Context(), events.ExamSessionSubjects(students[i], id), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if f := m.Event.Finalized; f != nil {
				out[id] = append(out[id], *f)
			}
		}
	}
	return out
}

// jsonBody is v as a request body.
func jsonBody(t testing.TB, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
