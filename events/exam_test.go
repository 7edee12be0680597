package events_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
)

// Every exam event survives its wire form, and a decoder refuses what is
// not one: another schema version, a missing field, another subject.
func TestExamCodec(t *testing.T) {
	st := eventstest.ExamStart(uuid.New(), uuid.New(), 4, 3, time.Minute, 30)
	sv := eventstest.ExamSave(st, 1, 2, 7)
	clear := eventstest.ExamSave(st, 2, -1, 8)
	s := events.NewExamSession()
	s.Apply(events.ExamEvent{Started: &st}, 1)
	s.Apply(events.ExamEvent{Saved: &sv}, 2)
	f := s.Finalization(events.FinalizedByStudent, time.Now())
	for _, e := range []events.ExamEvent{{Started: &st}, {Saved: &sv}, {Saved: &clear}, {Finalized: &f}} {
		b, err := events.EncodeExam(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := events.DecodeExamAt(events.ExamSubject(st.StudentID, st.QuizID, st.SessionID), b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		switch {
		case e.Started != nil && (got.Started == nil || got.Started.SessionID != st.SessionID || len(got.Started.Questions) != 4 ||
			!got.Started.Questions[1].Choices[1].Correct || !got.Started.Deadline.Equal(st.Deadline)):
			t.Errorf("started: %+v", got.Started)
		case e.Saved != nil && (got.Saved == nil || got.Saved.Seq != e.Saved.Seq || (got.Saved.ChoiceID == nil) != (e.Saved.ChoiceID == nil)):
			t.Errorf("saved: %+v", got.Saved)
		case e.Finalized != nil && (got.Finalized == nil || got.Finalized.AttemptID != events.ExamAttemptID(st.SessionID) ||
			len(got.Finalized.Answers) != 1 || got.Finalized.By != events.FinalizedByStudent):
			t.Errorf("finalized: %+v", got.Finalized)
		}
		if _, err := events.DecodeExamAt(events.ExamSubject(st.StudentID, uuid.New(), st.SessionID), b); !errors.Is(err, events.ErrUndecodable) {
			t.Errorf("decoded under another quiz's subject: %v", err)
		}
	}
	for _, bad := range []string{
		`{"type":"ExamStarted","schema":2}`,
		`{"type":"AnswerSaved","schema":1,"session_id":"` + st.SessionID.String() + `"}`,
		`{"type":"AnswerSaved","schema":1,"session_id":"` + st.SessionID.String() + `","student_id":"` + st.StudentID.String() +
			`","quiz_id":"` + st.QuizID.String() + `","question_id":"` + st.QuizID.String() + `","seq":0,"saved_at":"2026-01-01T00:00:00Z"}`,
		`{"type":"ExamFinalized","schema":1,"by":"someone"}`,
		`{"type":"Other","schema":1}`,
		`not json`,
	} {
		if _, err := events.DecodeExam([]byte(bad)); !errors.Is(err, events.ErrUndecodable) {
			t.Errorf("decoded %s: %v", bad, err)
		}
	}
	due := events.ExamDue{SessionID: st.SessionID, StudentID: st.StudentID, QuizID: st.QuizID, DueAt: time.Now().UTC()}
	b, err := events.EncodeExamDue(due)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := events.DecodeExamDueAt(events.ExamDueSubject(st.SessionID), b); err != nil || got.SessionID != due.SessionID {
		t.Errorf("due: %+v, %v", got, err)
	}
	if _, err := events.DecodeExamDueAt(events.ExamDueSubject(uuid.New()), b); !errors.Is(err, events.ErrUndecodable) {
		t.Errorf("due under another session's subject: %v", err)
	}
}

// Folding a session's events in any order gives the same session: the
// highest seq of each question wins, a cleared answer included, and the
// finalization grades exactly those.
func TestExamSessionFoldIsOrderIndependent(t *testing.T) {
	st := eventstest.ExamStart(uuid.New(), uuid.New(), 4, 3, time.Minute, 30)
	evs := []events.ExamEvent{{Started: &st}}
	win := map[int]int{} // question -> winning choice (-1: cleared)
	seq := int64(0)
	for u := range 3 { // question 3 is never answered
		for k := range 3 {
			seq++
			h := (u + k) % 4
			if h == 3 {
				h = -1
			}
			sv := eventstest.ExamSave(st, u, h, seq)
			evs = append(evs, events.ExamEvent{Saved: &sv})
			win[u] = h
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var first events.ExamFinalized
	for round := range 50 {
		perm := rng.Perm(len(evs))
		s := events.NewExamSession()
		for _, i := range perm {
			s.Apply(evs[i], uint64(i+1))
		}
		for u, h := range win {
			a := s.Answers[st.Questions[u].ID]
			if (h < 0) != (a.ChoiceID == nil) || (h >= 0 && *a.ChoiceID != st.Questions[u].Choices[h].ID) {
				t.Fatalf("round %d: question %d holds %+v, want choice %d", round, u, a, h)
			}
		}
		if s.LastSeq != uint64(len(evs)) {
			t.Fatalf("round %d: last seq %d", round, s.LastSeq)
		}
		f := s.Finalization(events.FinalizedByDeadline, st.Deadline)
		if round == 0 {
			first = f
			continue
		}
		if f.Score != first.Score || string(f.AnswersHash) != string(first.AnswersHash) {
			t.Fatalf("round %d: graded %d, first round %d", round, f.Score, first.Score)
		}
	}
	want := 0
	for u, h := range win {
		if h >= 0 && st.Questions[u].Choices[h].Correct {
			want++
		}
	}
	if first.Score != want || first.MaxScore != 4 || !first.SubmittedAt.Equal(st.Deadline) || first.AttemptID != events.ExamAttemptID(st.SessionID) {
		t.Errorf("finalization %+v, want score %d of 4 at the deadline", first, want)
	}
	if a := first.Attempt(); a.AttemptID != first.AttemptID || a.Score != want || len(a.Answers) != len(first.Answers) {
		t.Errorf("attempt %+v", a)
	}
}
