package readmodel

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
)

var sessionA = uuid.MustParse("00000000-0000-4000-8000-00000000005a")

func save(question byte, seq int64, choice *uuid.UUID) events.ExamEvent {
	return events.ExamEvent{Saved: &events.AnswerSaved{SessionID: sessionA, StudentID: student, QuizID: quizA,
		QuestionID: uuid.NewSHA1(sessionA, []byte{question}), ChoiceID: choice, Seq: seq, SavedAt: t0.Add(time.Duration(seq) * time.Second)}}
}

// A session's saves keep the highest seq of each question, whatever order
// and however often they come; a start the value does not hold asks for a
// value from PostgreSQL; a final is set once.
func TestSessionsApply(t *testing.T) {
	var s Sessions
	start := events.ExamEvent{Started: &events.ExamStarted{SessionID: sessionA, StudentID: student, QuizID: quizA,
		StartedAt: t0, Deadline: t0.Add(time.Hour)}}
	if got := s.Apply(start); got != Reseed {
		t.Fatalf("a start the value lacks: %v, want Reseed", got)
	}
	s.List = []Session{{ID: sessionA, Started: &SessionStart{QuizID: quizA, StartedAt: t0, Deadline: t0.Add(time.Hour)}}}
	if got := s.Apply(start); got != Skipped {
		t.Fatalf("a start held: %v, want Skipped", got)
	}
	c1, c2 := uuid.New(), uuid.New()
	for _, e := range []events.ExamEvent{save(1, 2, &c2), save(1, 1, &c1), save(2, 1, nil), save(1, 2, &c1)} {
		s.Apply(e)
	}
	if got := s.Apply(save(1, 1, &c1)); got != Skipped {
		t.Fatalf("a lower seq: %v, want Skipped", got)
	}
	x, _ := s.Find(sessionA)
	if len(x.Answers) != 2 || *x.Answers[slicesIndex(x, 1)].ChoiceID != c2 || x.Answers[slicesIndex(x, 1)].Seq != 2 {
		t.Fatalf("answers %+v: want question 1 at seq 2 with the first choice saved at 2", x.Answers)
	}
	fin := func(by string) events.ExamEvent {
		return events.ExamEvent{Finalized: &events.ExamFinalized{SessionID: sessionA, StudentID: student, By: by, SubmittedAt: t0}}
	}
	if s.Apply(fin(events.FinalizedByStudent)) != Folded || s.Apply(fin(events.FinalizedByDeadline)) != Skipped {
		t.Fatal("a final is set once")
	}
	if x, _ := s.Find(sessionA); x.Final.By != events.FinalizedByStudent {
		t.Fatalf("final by %s, want the first", x.Final.By)
	}
	enc, err := DecodeSessions(s.Encode())
	if err != nil || !enc.Equal(&s) {
		t.Fatalf("round trip: %+v, %v", enc, err)
	}
}

func slicesIndex(x Session, question byte) int {
	id := uuid.NewSHA1(sessionA, []byte{question})
	for i, a := range x.Answers {
		if a.QuestionID == id {
			return i
		}
	}
	return -1
}

// Sessions too large for a value are held as Over, and every fold into
// them asks for PostgreSQL.
func TestSessionsOver(t *testing.T) {
	var s Sessions
	for q := range 600 {
		s.Apply(save(byte(q%250), int64(q+1), nil))
		s.List[0].Answers = append(s.List[0].Answers, SavedAnswer{QuestionID: uuid.New(), Seq: 1, SavedAt: t0})
	}
	if s.Fit() || !s.Over || len(s.List) != 0 || len(s.Encode()) > SessionsMaxBytes {
		t.Fatalf("over the size: fit, over %v, %d sessions", s.Over, len(s.List))
	}
	if s.Apply(save(1, 1000, nil)) != Reseed {
		t.Fatal("a fold into an Over value must ask for PostgreSQL")
	}
}

func check(k int, status string) Check {
	return Check{ID: uuid.NewSHA1(student, []byte{'c', byte(k)}), ExerciseID: quizA, Language: "go", Status: status,
		SubmittedAt: t0.Add(time.Duration(k) * time.Second)}
}

// A check's status only moves forward; the page keeps the newest checks
// in order; a check older than a full page asks for PostgreSQL; a long
// output is left out, and the value stays under the bucket's message size.
func TestChecksApply(t *testing.T) {
	var s Checks
	done := check(1, events.CheckPassed)
	done.Output = "ok\n"
	for _, c := range []Check{check(1, events.CheckRunning), done, check(1, events.CheckQueued), check(1, events.CheckRunning)} {
		s.Apply(c)
	}
	if s.Total != 1 || s.Page[0].Status != events.CheckPassed || s.Page[0].Output != "ok\n" {
		t.Fatalf("after a verdict and older states: %+v", s)
	}
	long := strings.Repeat("\x01", events.MaxCheckOutput)
	for k := 2; k <= PageSize+5; k++ {
		c := check(k, events.CheckFailed)
		c.Output = long
		if s.Apply(c) != Folded {
			t.Fatalf("check %d not folded", k)
		}
	}
	if s.Total != PageSize+5 || len(s.Page) != PageSize || s.Page[0].ID != check(PageSize+5, "").ID || !s.Page[0].Cut || s.Page[0].Output != "" {
		t.Fatalf("total %d, page %d, first %+v", s.Total, len(s.Page), s.Page[0])
	}
	if n := len(s.Encode()); n > 60<<10 {
		t.Fatalf("a page of long outputs encodes to %d bytes, over the bucket's message size", n)
	}
	if got := s.Apply(check(1, events.CheckPassed)); got != Reseed {
		t.Fatalf("a check older than a full page: %v, want Reseed", got)
	}
}
