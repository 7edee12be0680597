package worker_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

func record(t *testing.T, seq uint64, e events.ExamEvent) worker.Record {
	t.Helper()
	b, err := events.EncodeExam(e)
	if err != nil {
		t.Fatal(err)
	}
	return worker.Record{Seq: seq, Subject: e.Subject(), Data: b}
}

// The projection takes session events in any order, any number of times,
// in batches of any shape, and ends as the fold of the same events ends:
// for each question the highest seq, a clear included; one session row
// and one final each. What is stored once is never changed again.
func TestExamWriterIsOrderIndependent(t *testing.T) {
	st, dbURL := storetest.Open(t)
	db := storetest.DB(t, dbURL)
	wr := worker.NewExamWriter(st, worker.ExamWriterConfig{})
	rng := rand.New(rand.NewPCG(7, 7))

	var recs []worker.Record
	folds := map[uuid.UUID]*events.ExamSession{}
	seq := uint64(0)
	add := func(e events.ExamEvent) {
		seq++
		recs = append(recs, record(t, seq, e))
		f, ok := folds[e.SessionID()]
		if !ok {
			f = events.NewExamSession()
			folds[e.SessionID()] = f
		}
		f.Apply(e, seq)
	}
	for range 20 {
		s := eventstest.ExamStart(uuid.New(), uuid.New(), 5, 4, time.Minute, 30)
		add(events.ExamEvent{Started: &s})
		for k := range 12 {
			h := rng.IntN(5) - 1
			sv := eventstest.ExamSave(s, rng.IntN(5), h, int64(k+1))
			add(events.ExamEvent{Saved: &sv})
		}
		if rng.IntN(2) == 0 {
			f := folds[s.SessionID].Finalization(events.FinalizedByStudent, time.Now())
			add(events.ExamEvent{Finalized: &f})
		}
	}
	// Delivered shuffled, in odd batches, a third of them twice, with a
	// poison record among them.
	deliveries := append([]worker.Record(nil), recs...)
	for _, r := range recs {
		if rng.IntN(3) == 0 {
			deliveries = append(deliveries, r)
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	deliveries = append(deliveries, worker.Record{Seq: 9999, Subject: recs[0].Subject, Data: []byte(`{"type":"AnswerSaved","schema":1}`)})
	poison := 0
	for len(deliveries) > 0 {
		n := min(len(deliveries), 1+rng.IntN(40))
		out := wr.Write(t.Context(), deliveries[:n])
		poison += len(out.Poison)
		if len(out.Unsettled) > 0 {
			t.Fatalf("unsettled: %+v", out)
		}
		deliveries = deliveries[n:]
	}
	if poison != 1 {
		t.Errorf("%d poison records, want 1", poison)
	}
	for id, f := range folds {
		row, err := st.GetExamSession(t.Context(), f.Started.StudentID, id)
		if err != nil {
			t.Fatalf("session %s: %v", id, err)
		}
		if len(row.Answers) != len(f.Answers) {
			t.Errorf("session %s: %d answers stored, the fold has %d", id, len(row.Answers), len(f.Answers))
		}
		for _, a := range row.Answers {
			w := f.Answers[a.QuestionID]
			if a.Seq != w.Seq || (a.ChoiceID == nil) != (w.ChoiceID == nil) || (a.ChoiceID != nil && *a.ChoiceID != *w.ChoiceID) {
				t.Errorf("session %s question %s: stored seq %d, the fold's %d", id, a.QuestionID, a.Seq, w.Seq)
			}
		}
		if (row.Final == nil) != (f.Final == nil) || (row.Final != nil && row.Final.AttemptID != f.Final.AttemptID) {
			t.Errorf("session %s: stored final %+v, the fold's %+v", id, row.Final, f.Final)
		}
	}
	// Everything again: nothing changes.
	if out := wr.Write(t.Context(), recs); out.Stored != 0 || out.Duplicates != int64(len(recs)) {
		t.Errorf("writing everything again: %+v", out)
	}
	if n := storetest.Int(t, db, `SELECT count(*) FROM exam_sessions`); n != 20 {
		t.Errorf("%d sessions stored, want 20", n)
	}
}

// The finalizer: a session nobody submits is finalized when its timer
// fires, from its saved answers, and its attempt published; a timer of a
// session submitted before changes nothing; one whose start was never
// stored is dropped. The writer publishes the attempt of a final whose
// finalizer died before it could.
func TestExamWorker(t *testing.T) {
	st, dbURL := storetest.Open(t)
	db := storetest.DB(t, dbURL)
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	ctx := t.Context()
	attempts, err := eventlog.NewLog(ctx, js, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	exams, err := eventlog.NewExamLog(ctx, js, streams.ExamStreamConfig{AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exams.Close)
	// start appends a session's start and saves, arming its timer at its cutoff.
	start := func(d time.Duration, saves ...[2]int) (events.ExamStarted, *events.ExamSession) {
		t.Helper()
		s := eventstest.ExamStart(uuid.New(), uuid.New(), 5, 4, d, 1)
		if err := exams.Arm(ctx, events.ExamDue{SessionID: s.SessionID, StudentID: s.StudentID, QuizID: s.QuizID, DueAt: s.Cutoff()}); err != nil {
			t.Fatal(err)
		}
		seq, err := exams.Append(ctx, events.ExamEvent{Started: &s}, 0)
		if err != nil {
			t.Fatal(err)
		}
		fold := events.NewExamSession()
		fold.Apply(events.ExamEvent{Started: &s}, seq)
		for i, uh := range saves {
			sv := eventstest.ExamSave(s, uh[0], uh[1], int64(i+1))
			if seq, err = exams.Append(ctx, events.ExamEvent{Saved: &sv}, fold.LastSeq); err != nil {
				t.Fatal(err)
			}
			fold.Apply(events.ExamEvent{Saved: &sv}, seq)
		}
		return s, fold
	}
	// Question u's correct choice is u%4; the last save of a question wins.
	expired, _ := start(time.Second, [2]int{0, 0}, [2]int{1, 1}, [2]int{2, 0}, [2]int{1, 3}) // right: q0 only
	submitted, sfold := start(time.Second, [2]int{3, 3})                                     // right: q3
	unpublished, ufold := start(time.Hour, [2]int{4, 0}, [2]int{0, 0})                       // right: q4 and q0
	if err := exams.Arm(ctx, events.ExamDue{SessionID: uuid.New(), StudentID: uuid.New(), QuizID: uuid.New(), DueAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := exams.Finalize(ctx, sfold, events.FinalizedByStudent, time.Now()); err != nil {
		t.Fatal(err)
	}
	// As if the submit's API died between its final and its attempt.
	uf, _, err := exams.Finalize(ctx, ufold, events.FinalizedByStudent, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	w, err := worker.NewExamWorker(ctx, exams, st, attempts, worker.ExamConfig{AckWait: 5 * time.Second, MaxWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() { stop(); <-done }()

	// attempt waits for a session's attempt in the attempts stream.
	attempt := func(s events.ExamStarted) events.AttemptSubmitted {
		t.Helper()
		until := time.Now().Add(15 * time.Second)
		for time.Now().Before(until) {
			pub, err := attempts.Attempt(ctx, s.StudentID, events.ExamAttemptID(s.SessionID))
			if err == nil {
				return pub.Event
			}
			if !errors.Is(err, eventlog.ErrNotInLog) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no attempt for session %s", s.SessionID)
		return events.AttemptSubmitted{}
	}
	if a := attempt(unpublished); a.Score != uf.Score || a.Score != 2 {
		t.Errorf("the writer published %+v, want the final's score %d", a, uf.Score)
	}
	a := attempt(expired)
	if a.Score != 1 || !a.SubmittedAt.Equal(expired.Deadline) {
		t.Errorf("expired session's attempt: %+v; want score 1 at the deadline %s", a, expired.Deadline)
	}
	if time.Now().Before(expired.Cutoff()) {
		t.Errorf("finalized before deadline + grace")
	}
	if a := attempt(submitted); a.Score != 1 || a.SubmittedAt.Equal(submitted.Deadline) {
		t.Errorf("submitted session's attempt: %+v", a)
	}
	until := time.Now().Add(15 * time.Second)
	for storetest.Int(t, db, `SELECT count(*) FROM exam_finals`) != 3 && time.Now().Before(until) {
		time.Sleep(50 * time.Millisecond)
	}
	var by string
	if err := db.QueryRow(ctx, `SELECT finalized_by FROM exam_finals WHERE session_id = $1`, expired.SessionID).Scan(&by); err != nil || by != store.FinalizedByDeadline {
		t.Errorf("expired session stored as finalized by %q (%v)", by, err)
	}
	msgs, err := exams.Events(ctx, events.ExamSessionSubjects(submitted.StudentID, submitted.SessionID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	finals := 0
	for _, m := range msgs {
		if m.Event.Finalized != nil {
			finals++
		}
	}
	if finals != 1 {
		t.Errorf("the submitted session has %d finals, want 1", finals)
	}
}
