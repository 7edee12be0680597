package eventlog_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/natsserver"
	"github.com/quizstream/quizstream/streams"
)

// Every exam event survives its wire form, and a decoder refuses what is
// not one: another schema version, a missing field, another subject.

func newExamLog(t *testing.T) (*eventlog.ExamLog, jetstream.JetStream) {
	t.Helper()
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	l, err := eventlog.NewExamLog(t.Context(), js, streams.ExamStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, js
}

// The compare-and-set: a student's sessions of a quiz change only from
// the state the publisher read. A second start, a save after the final, a
// retried event all lose it; concurrent finalizations make one.
func TestExamLogCompareAndSet(t *testing.T) {
	l, _ := newExamLog(t)
	ctx := t.Context()
	student, quiz := uuid.New(), uuid.New()
	st := eventstest.ExamStart(student, quiz, 4, 3, time.Minute, 30)
	if s, last, err := l.Latest(ctx, student, quiz); s != nil || last != 0 || err != nil {
		t.Fatalf("latest before any session: %v %d %v", s, last, err)
	}
	seq, err := l.Append(ctx, events.ExamEvent{Started: &st}, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := eventstest.ExamStart(student, quiz, 4, 3, time.Minute, 30)
	if _, err := l.Append(ctx, events.ExamEvent{Started: &other}, 0); !errors.Is(err, eventlog.ErrExamConflict) {
		t.Errorf("a second start from the same state: %v", err)
	}
	if _, err := l.Append(ctx, events.ExamEvent{Started: &st}, seq); !errors.Is(err, eventlog.ErrExamConflict) {
		t.Errorf("the start again (same message id): %v", err)
	}
	s, last, err := l.Latest(ctx, student, quiz)
	if err != nil || s.Started.SessionID != st.SessionID || last != seq {
		t.Fatalf("latest: %+v %d %v", s, last, err)
	}
	// Another student, or another quiz, is not in the way.
	if _, err := l.Append(ctx, events.ExamEvent{Started: ptrTo(eventstest.ExamStart(uuid.New(), quiz, 4, 3, time.Minute, 30))}, 0); err != nil {
		t.Errorf("another student's start: %v", err)
	}

	// Concurrent saves: each is retried on a conflict, as the API does.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			cur := s
			sv := eventstest.ExamSave(st, g%4, g%3, int64(g+1))
			for {
				seq, err := l.Append(ctx, events.ExamEvent{Saved: &sv}, cur.LastSeq)
				if err == nil {
					_ = seq
					return
				}
				if !errors.Is(err, eventlog.ErrExamConflict) {
					t.Error(err)
					return
				}
				if cur, err = l.Refresh(ctx, cur); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s, err = l.Session(ctx, student, st.SessionID)
	if err != nil || len(s.Answers) != 4 {
		t.Fatalf("session after the saves: %+v, %v", s, err)
	}
	for u := range 4 { // the highest of the two seqs saved for each question
		if a := s.Answers[st.Questions[u].ID]; a.Seq != int64(u+5) {
			t.Errorf("question %d: seq %d, want %d", u, a.Seq, u+5)
		}
	}

	// Finalizations racing from stale states: one wins, every caller gets it.
	finals := make([]events.ExamFinalized, 6)
	for i := range finals {
		wg.Go(func() {
			by := events.FinalizedByStudent
			if i%2 == 1 {
				by = events.FinalizedByDeadline
			}
			f, _, err := l.Finalize(ctx, s, by, st.Deadline)
			if err != nil {
				t.Error(err)
			}
			finals[i] = f
		})
	}
	wg.Wait()
	for _, f := range finals[1:] {
		if f.By != finals[0].By || !f.FinalizedAt.Equal(finals[0].FinalizedAt) {
			t.Errorf("finalizations differ: %+v and %+v", f, finals[0])
		}
	}
	msgs, err := l.Events(ctx, events.ExamSessionSubjects(student, st.SessionID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Event.Finalized != nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d finalizations stored, want 1", n)
	}
	late := eventstest.ExamSave(st, 0, 0, 99)
	if _, err := l.Append(ctx, events.ExamEvent{Saved: &late}, s.LastSeq); !errors.Is(err, eventlog.ErrExamConflict) {
		t.Errorf("a save from the state before the final: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// Concurrent appends of many sessions go in atomic batches and each gets
// the sequence of its own message; a conflict inside a batch refuses only
// its own append.
func TestExamLogBatches(t *testing.T) {
	l, js := newExamLog(t)
	ctx := t.Context()
	quiz := uuid.New()
	const n = 400
	starts := make([]events.ExamStarted, n)
	seqs := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range starts {
		starts[i] = eventstest.ExamStart(uuid.New(), quiz, 4, 3, time.Minute, 30)
		if i%50 == 0 { // a conflict: this student has a session already
			if _, err := l.Append(ctx, events.ExamEvent{Started: ptrTo(eventstest.ExamStart(starts[i].StudentID, quiz, 4, 3, time.Minute, 30))}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range starts {
		wg.Go(func() { seqs[i], errs[i] = l.Append(ctx, events.ExamEvent{Started: &starts[i]}, 0) })
	}
	wg.Wait()
	stream, err := js.Stream(ctx, l.Config().Name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range starts {
		if i%50 == 0 {
			if !errors.Is(errs[i], eventlog.ErrExamConflict) {
				t.Errorf("start %d: %v, want a conflict", i, errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		m, err := stream.GetMsg(ctx, seqs[i])
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != events.ExamSubject(starts[i].StudentID, quiz, starts[i].SessionID) {
			t.Errorf("start %d answered seq %d, which holds %s", i, seqs[i], m.Subject)
		}
	}
}

// A timer fires on its due subject at its time, not before (fractions of
// a second included), and a later Arm of the same session replaces it.
func TestExamTimers(t *testing.T) {
	l, js := newExamLog(t)
	ctx := t.Context()
	cons, err := l.FinalizerConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	session := uuid.New()
	due := events.ExamDue{SessionID: session, StudentID: uuid.New(), QuizID: uuid.New(), DueAt: time.Now().Add(1700 * time.Millisecond)}
	if err := l.Arm(ctx, events.ExamDue{SessionID: session, StudentID: due.StudentID, QuizID: due.QuizID, DueAt: time.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Arm(ctx, due); err != nil { // replaces the first
		t.Fatal(err)
	}
	var fired []time.Time
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := cons.Fetch(10, jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			got, err := events.DecodeExamDueAt(m.Subject(), m.Data())
			if err != nil || got.SessionID != session || !got.DueAt.Equal(due.DueAt.UTC()) {
				t.Errorf("fired %s %s: %v", m.Subject(), m.Data(), err)
			}
			fired = append(fired, time.Now())
			m.Ack()
		}
	}
	if len(fired) != 1 || fired[0].Before(due.DueAt) || fired[0].After(due.DueAt.Add(time.Second)) {
		t.Errorf("fired at %v, want once, within a second after %s", fired, due.DueAt)
	}
	s, err := js.Stream(ctx, l.Config().TimerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.ExamTimerPrefix+".>"))
	if err != nil || info.State.Subjects[events.ExamDueSubject(session)] != 1 || len(info.State.Subjects) != 1 {
		t.Errorf("timer stream holds %v (%v): want only the fired timer, the schedule purged", info.State.Subjects, err)
	}
}

// A timer is in the stream, not in a process: armed, then the server
// stopped until past its time, it fires once the server is back.
func TestExamTimerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := natsserver.ServerConfig{Dir: dir, SyncAlways: true}
	srv, err := natsserver.StartServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Shutdown()
		}
	})
	nc, js := eventstest.Connect(t, srv)
	l, err := eventlog.NewExamLog(t.Context(), js, streams.ExamStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	due := events.ExamDue{SessionID: uuid.New(), StudentID: uuid.New(), QuizID: uuid.New(), DueAt: time.Now().Add(time.Second)}
	if err := l.Arm(t.Context(), due); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
	stopped = true
	time.Sleep(time.Until(due.DueAt.Add(time.Second)))

	srv2 := eventstest.StartServer(t, cfg)
	restarted := time.Now()
	_, js2 := eventstest.Connect(t, srv2)
	l2, err := eventlog.NewExamLog(t.Context(), js2, streams.ExamStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l2.Close)
	cons, err := l2.FinalizerConsumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for time.Since(restarted) < 5*time.Second {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			if got, err := events.DecodeExamDueAt(m.Subject(), m.Data()); err != nil || got.SessionID != due.SessionID {
				t.Fatalf("fired %s: %v", m.Data(), err)
			}
			t.Logf("fired %s after the restart", time.Since(restarted).Round(time.Millisecond))
			return
		}
	}
	t.Fatal("the timer did not fire within 5s of the restart")
}

// Message schedules need a DiscardOld stream: the server refuses them on a
// DiscardNew one, which is why the timers are not in the EXAMS stream
// (whose every event is a 202 and must never be discarded).
func TestExamStreamsSettings(t *testing.T) {
	l, js := newExamLog(t)
	ctx := t.Context()
	ev, err := js.Stream(ctx, l.Config().Name)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := js.Stream(ctx, l.Config().TimerName)
	if err != nil {
		t.Fatal(err)
	}
	if c := ev.CachedInfo().Config; c.Discard != jetstream.DiscardNew || c.Retention != jetstream.LimitsPolicy || c.AllowMsgSchedules {
		t.Errorf("events stream: %+v", c)
	}
	if c := tm.CachedInfo().Config; c.Discard != jetstream.DiscardOld || !c.AllowMsgSchedules {
		t.Errorf("timers stream: %+v", c)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"},
		Discard: jetstream.DiscardNew, AllowMsgSchedules: true})
	if err == nil {
		t.Error("the server took message schedules on a DiscardNew stream; the timers could move into EXAMS")
	}
}

// A service process opens the exams streams as they are: missing ones are
// ErrNotApplied, and one whose durability differs from its configuration
// is refused rather than changed.
func TestOpenExamLogChangesNothing(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	ctx := t.Context()
	if _, err := eventlog.OpenExamLog(ctx, js, streams.ExamStreamConfig{}); !errors.Is(err, streams.ErrNotApplied) {
		t.Fatalf("open before apply: %v", err)
	}
	if _, err := streams.Apply(ctx, js, false, streams.Exams(streams.ExamStreamConfig{})); err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.OpenExamLog(ctx, js, streams.ExamStreamConfig{})
	if err != nil {
		t.Fatalf("open after apply: %v", err)
	}
	l.Close()
	// An operator's stream that could drop acknowledged events.
	s, err := js.Stream(ctx, streams.DefaultExamStreamName)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	c.Discard = jetstream.DiscardOld
	if _, err := js.UpdateStream(ctx, c); err != nil {
		t.Fatal(err)
	}
	if l, err := eventlog.OpenExamLog(ctx, js, streams.ExamStreamConfig{}); err == nil {
		l.Close()
		t.Error("opened an events stream that discards old events")
	}
	if s, err = js.Stream(ctx, streams.DefaultExamStreamName); err != nil || s.CachedInfo().Config.Discard != jetstream.DiscardOld {
		t.Errorf("opening changed the stream: %v", err)
	}
}
