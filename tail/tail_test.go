package tail_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/tail"
)

// newTail returns a Log on one connection (the writing instance) and a
// Tail on another (the reading instance) of the same server, with the
// tl's metrics.
func newTail(t *testing.T, cfg tail.TailConfig) (*eventlog.Log, *eventlog.Log, *tail.Tail, *prometheus.Registry) {
	t.Helper()
	ns := eventstest.NewServer(t)
	_, jsW := eventstest.Connect(t, ns)
	_, jsR := eventstest.Connect(t, ns)
	w, err := eventlog.NewLog(t.Context(), jsW, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := eventlog.NewLog(t.Context(), jsR, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	tl, err := tail.NewTail(t.Context(), r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tl.Close)
	return w, r, tl, reg
}

// A read on another instance that begins after a publish was acknowledged
// sees it, every time, without any pause: the tl waits for the stream's
// position as it was when the read began.
func TestTailReadsYourWritesAcrossConnections(t *testing.T) {
	w, _, tl, _ := newTail(t, tail.TailConfig{})
	student := uuid.New()
	for i := range 200 {
		pub, err := w.PublishAttempt(t.Context(), eventstest.Attempt(student, fmt.Sprint("k", i), nil))
		if err != nil {
			t.Fatal(err)
		}
		got, err := tl.StudentAttempts(t.Context(), student, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != i+1 || got[i].Seq != pub.Seq || got[i].Event.AttemptID != pub.Event.AttemptID {
			t.Fatalf("after publish %d (seq %d) the tl holds %d events", i, pub.Seq, len(got))
		}
		one, err := tl.Attempt(t.Context(), student, pub.Event.AttemptID)
		if err != nil || one.Seq != pub.Seq {
			t.Fatalf("attempt %d: %+v, %v", i, one, err)
		}
		if n, err := tl.CountStudentAttempts(t.Context(), student, 0, 5); err != nil || n != min(i+1, 5) {
			t.Fatalf("after publish %d the tl counts %d (%v) up to 5", i, n, err)
		}
	}
	if other, _ := tl.StudentAttempts(t.Context(), uuid.New(), 0, 10); len(other) != 0 {
		t.Fatalf("another student sees %d events", len(other))
	}
}

// Settled events are forgotten as the ack floor moves.
func TestTailForgetsWhatIsSettled(t *testing.T) {
	w, r, tl, reg := newTail(t, tail.TailConfig{FloorEvery: 10 * time.Millisecond})
	student := uuid.New()
	for i := range 10 {
		if _, err := w.PublishAttempt(t.Context(), eventstest.Attempt(student, fmt.Sprint("k", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := tl.StudentAttempts(t.Context(), student, 0, 100); len(got) != 10 {
		t.Fatalf("holds %d, want 10", len(got))
	}
	cons, err := r.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, reg, "quizstream_api_tail_events") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tl still holds settled events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if floor, _ := tl.AckFloor(t.Context()); floor != 10 {
		t.Fatalf("floor %d, want 10", floor)
	}
	if got, _ := tl.StudentAttempts(t.Context(), student, 10, 100); len(got) != 0 {
		t.Fatalf("above the floor: %d events", len(got))
	}
}

// A student over the bound is read from the stream: still every event.
func TestTailFallsBackOverItsBound(t *testing.T) {
	w, _, tl, reg := newTail(t, tail.TailConfig{MaxPerStudent: 3})
	student := uuid.New()
	for i := range 5 {
		if _, err := w.PublishAttempt(t.Context(), eventstest.Attempt(student, fmt.Sprint("k", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tl.StudentAttempts(t.Context(), student, 0, 100)
	if err != nil || len(got) != 5 {
		t.Fatalf("got %d events (%v), want all 5", len(got), err)
	}
	if n := metric(t, reg, "quizstream_api_tail_fallbacks_total"); n != 1 {
		t.Fatalf("fallbacks %v, want 1", n)
	}
	if n := metric(t, reg, "quizstream_api_tail_events"); n != 3 {
		t.Fatalf("the tl holds %v, want its bound of 3", n)
	}
}

// A read that carries a position (the client's last 202) waits for the
// tl to pass it, however far ahead of the stream it was when the read
// began; one past anything the stream will hold is read from the stream
// after WaitTimeout; position 0 takes the tl as it is.
func TestTailWaitsForTheReadersPosition(t *testing.T) {
	w, _, tl, reg := newTail(t, tail.TailConfig{WaitTimeout: 500 * time.Millisecond})
	student := uuid.New()
	first, err := w.PublishAttempt(t.Context(), eventstest.Attempt(student, "k0", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tl.StudentAttempts(tail.WithPosition(t.Context(), first.Seq), student, 0, 10); err != nil || len(got) != 1 {
		t.Fatalf("at the first 202's position: %d events, %v", len(got), err)
	}

	// The read begins before the publish it must see: only its position
	// tells it to wait (the stream's position would not).
	type read struct {
		got []eventlog.Published
		err error
	}
	done := make(chan read, 1)
	go func() {
		got, err := tl.StudentAttempts(tail.WithPosition(t.Context(), first.Seq+1), student, 0, 10)
		done <- read{got, err}
	}()
	time.Sleep(50 * time.Millisecond)
	second, err := w.PublishAttempt(t.Context(), eventstest.Attempt(student, "k1", nil))
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.got) != 2 || r.got[1].Seq != second.Seq {
		t.Fatalf("waiting for position %d: %+v, %v; want both events", first.Seq+1, r.got, r.err)
	}
	if n := metric(t, reg, "quizstream_api_tail_fallbacks_total"); n != 0 {
		t.Fatalf("fallbacks %v, want the tl to answer", n)
	}

	if got, err := tl.StudentAttempts(tail.WithPosition(t.Context(), 1<<40), student, 0, 10); err != nil || len(got) != 2 {
		t.Fatalf("past the stream's end: %d events, %v; want both, from the stream", len(got), err)
	}
	if n := metric(t, reg, "quizstream_api_tail_fallbacks_total"); n != 1 {
		t.Fatalf("fallbacks %v, want 1", n)
	}
	if got, err := tl.StudentAttempts(tail.WithPosition(t.Context(), 0), student, 0, 10); err != nil || len(got) != 2 {
		t.Fatalf("position 0: %d events, %v", len(got), err)
	}
}

// metric returns the value of an unlabelled gauge or counter of reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// An event its own instance stored (Stored, as the Batcher tells it) is
// taken as it is when the stream delivers it, not decoded again; a
// duplicate's, or one for a sequence the tl has passed, is not.
func TestTailTakesWhatItsInstanceStored(t *testing.T) {
	w, _, tl, _ := newTail(t, tail.TailConfig{})
	student := uuid.New()
	first, err := w.PublishAttempt(t.Context(), eventstest.Attempt(student, "k1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if !tl.CaughtUp(t.Context()) {
		t.Fatal("the tl did not catch up")
	}
	mark := func(p eventlog.Published) eventlog.Published {
		p.Event.Score = 7 // the stream's own events score 0
		return p
	}
	tl.Stored(mark(first)) // delivered already: ignored
	next := eventstest.Attempt(student, "k2", nil)
	tl.Stored(mark(eventlog.Published{Event: next, Seq: first.Seq + 1}))
	dup := eventstest.Attempt(student, "k3", nil)
	tl.Stored(eventlog.Published{Event: dup, Seq: first.Seq + 2, Duplicate: true})
	for _, e := range []events.AttemptSubmitted{next, dup} {
		if _, err := w.PublishAttempt(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tl.StudentAttempts(t.Context(), student, 0, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("the tl holds %+v, %v; want 3 events", got, err)
	}
	for i, want := range []int{0, 7, 0} {
		if got[i].Event.Score != want {
			t.Errorf("event %d (seq %d): score %d, want %d", i, got[i].Seq, got[i].Event.Score, want)
		}
		if got[i].Event.Answers != nil || got[i].Event.IdempotencyKey != "" {
			t.Errorf("event %d holds its answers or key: %+v", i, got[i].Event)
		}
	}
}

// Through a Batcher that tells it what it stored, the tl holds exactly
// the stream's events.
func TestTailOfABatcherHoldsTheStreamsEvents(t *testing.T) {
	w, r, tl, _ := newTail(t, tail.TailConfig{})
	b, err := eventlog.NewBatcher(t.Context(), w, eventlog.BatchConfig{Index: tl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	student := uuid.New()
	var evs []events.AttemptSubmitted
	for i := range 50 {
		evs = append(evs, eventstest.Attempt(student, fmt.Sprint("k", i), []events.Answer{{QuestionID: "q", ChoiceID: "c"}}))
	}
	pubs := make([]eventlog.Published, len(evs))
	errs := make(chan error, len(evs))
	for i, e := range evs {
		go func() {
			var err error
			pubs[i], err = b.PublishAttempt(t.Context(), e)
			errs <- err
		}()
	}
	for range evs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range pubs {
		held, err := tl.Attempt(t.Context(), student, p.Event.AttemptID)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := r.Attempt(t.Context(), student, p.Event.AttemptID) // from the stream itself
		if err != nil {
			t.Fatal(err)
		}
		stored.Event.Answers, stored.Event.IdempotencyKey = nil, ""
		if held.Seq != p.Seq || held.Seq != stored.Seq || !reflect.DeepEqual(held.Event, stored.Event) {
			t.Fatalf("attempt %d: the tl holds %+v at %d, the stream %+v at %d", i, held.Event, held.Seq, stored.Event, stored.Seq)
		}
	}
}
