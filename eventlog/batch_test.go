package eventlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/tail"
)

type batcherHarness struct {
	js      jetstream.JetStream
	log     *eventlog.Log
	b       *eventlog.Batcher
	metrics *prometheus.Registry
}

func newBatcher(t *testing.T, scfg streams.StreamConfig, bcfg eventlog.BatchConfig) *batcherHarness {
	t.Helper()
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	lg, err := eventlog.NewLog(t.Context(), js, scfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := eventlog.NewBatcher(t.Context(), lg, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(eventlog.NewBatchCollector(b))
	return &batcherHarness{js: js, log: lg, b: b, metrics: reg}
}

// batchStats are the Batcher's metrics.
type batchStats struct {
	batches, batched, resends, unbatched, held, alone float64
}

func (h *batcherHarness) stats(t *testing.T) batchStats {
	t.Helper()
	mfs, err := h.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var s batchStats
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch mf.GetName() {
		case "quizstream_publish_batch_size_messages":
			s.batches, s.batched = float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
		case "quizstream_publish_batch_resends_total":
			s.resends = m.GetCounter().GetValue()
		case "quizstream_publish_unbatched_attempts_total":
			s.unbatched = m.GetCounter().GetValue()
		case "quizstream_publish_held_duplicates_total":
			s.held = m.GetCounter().GetValue()
		case "quizstream_publish_recent_id_alone_total":
			s.alone = m.GetCounter().GetValue()
		}
	}
	return s
}

type result struct {
	pub eventlog.Published
	err error
}

// publishAll publishes evs concurrently through p and returns the outcomes in order.
func publishAll(ctx context.Context, p interface {
	PublishAttempt(context.Context, events.AttemptSubmitted) (eventlog.Published, error)
}, evs []events.AttemptSubmitted) []result {
	out := make([]result, len(evs))
	var wg sync.WaitGroup
	for i, e := range evs {
		wg.Go(func() { out[i].pub, out[i].err = p.PublishAttempt(ctx, e) })
	}
	wg.Wait()
	return out
}

func freshEvents(n int) []events.AttemptSubmitted {
	evs := make([]events.AttemptSubmitted, n)
	for i := range evs {
		evs[i] = eventstest.Attempt(uuid.New(), "k", []events.Answer{{QuestionID: "q", ChoiceID: strconv.Itoa(i)}})
	}
	return evs
}

// checkStored fails unless the stream holds, at the sequence each caller
// was answered with, that caller's own event.
func checkStored(t *testing.T, js jetstream.JetStream, evs []events.AttemptSubmitted, res []result) {
	t.Helper()
	s, err := js.Stream(t.Context(), "ATTEMPTS")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		m, err := s.GetMsg(t.Context(), r.pub.Seq)
		if err != nil {
			t.Fatalf("caller %d answered seq %d: %v", i, r.pub.Seq, err)
		}
		got, err := events.Decode(m.Data)
		if err != nil || got.AttemptID != evs[i].AttemptID || m.Subject != evs[i].Subject() {
			t.Fatalf("caller %d (attempt %s) was answered seq %d, which holds attempt %s",
				i, evs[i].AttemptID, r.pub.Seq, got.AttemptID)
		}
	}
}

// Every caller gets its own sequence: distinct, together exactly what the
// stream holds, and each holding that caller's event (a batch answering a
// caller with another's position fails here).
func TestBatcherAnswersEachCallerItsOwnSequence(t *testing.T) {
	h := newBatcher(t, streams.StreamConfig{}, eventlog.BatchConfig{MaxMessages: 50})
	const workers, each = 64, 30
	evs := freshEvents(workers * each)
	res := make([]result, len(evs))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * each; i < (w+1)*each; i++ {
				res[i].pub, res[i].err = h.b.PublishAttempt(t.Context(), evs[i])
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, r := range res {
		if r.err != nil || r.pub.Duplicate || r.pub.Event.AttemptID != evs[i].AttemptID {
			t.Fatalf("caller %d: %+v, %v", i, r.pub, r.err)
		}
		if seen[r.pub.Seq] || r.pub.Seq < 1 || r.pub.Seq > uint64(len(evs)) {
			t.Fatalf("caller %d: seq %d answered twice or outside 1..%d", i, r.pub.Seq, len(evs))
		}
		seen[r.pub.Seq] = true
	}
	if n := eventstest.StreamMessages(t, h.js, "ATTEMPTS"); n != uint64(len(evs)) {
		t.Fatalf("the stream holds %d messages, want %d", n, len(evs))
	}
	checkStored(t, h.js, evs, res)
	st := h.stats(t)
	t.Logf("%v batches of %.1f on average, %v attempts alone", st.batches, st.batched/st.batches, st.unbatched)
	if st.batched+st.unbatched != float64(len(evs)) || st.batched < float64(len(evs))/2 {
		t.Fatalf("metrics %+v: want most of the %d attempts in batches, the rest alone", st, len(evs))
	}
}

// A duplicate in a batch is answered with the original, and the rest of
// the batch is stored once: inside the duplicate window, past it (the
// subject guard), and twice in one batch.
func TestBatcherDuplicates(t *testing.T) {
	window := 500 * time.Millisecond
	// Batches of exactly 3: each leaves when full.
	bcfg := eventlog.BatchConfig{MaxMessages: 3, MinMessages: 2, Window: time.Minute}
	h := newBatcher(t, streams.StreamConfig{Duplicates: window}, bcfg)
	// The originals come from another instance: h.b has not sent their
	// ids, so their retries reach its batches.
	other, err := eventlog.NewBatcher(t.Context(), h.log, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	origs := freshEvents(3)
	first := publishAll(t.Context(), other, origs)
	for i, r := range first {
		if r.err != nil || r.pub.Duplicate {
			t.Fatalf("original %d: %+v, %v", i, r.pub, r.err)
		}
	}
	held := uint64(3)

	retryOf := func(e events.AttemptSubmitted) events.AttemptSubmitted {
		e.Answers = nil // another payload under the same id
		e.AnswersHash = events.HashAnswers(e.QuizID, nil)
		e.SubmittedAt = e.SubmittedAt.Add(time.Second)
		return e
	}
	checkDuplicate := func(name string, got result, orig events.AttemptSubmitted, seq uint64) {
		t.Helper()
		if got.err != nil || !got.pub.Duplicate || got.pub.Seq != seq || !got.pub.Event.SubmittedAt.Equal(orig.SubmittedAt) ||
			!bytes.Equal(got.pub.Event.AnswersHash, orig.AnswersHash) || got.pub.Event.AttemptID != orig.AttemptID {
			t.Fatalf("%s: %+v, %v; want the original at seq %d", name, got.pub, got.err, seq)
		}
	}
	checkFresh := func(name string, evs []events.AttemptSubmitted, res []result) {
		t.Helper()
		for i, r := range res {
			if r.err != nil || r.pub.Duplicate {
				t.Fatalf("%s: fresh attempt %d: %+v, %v", name, i, r.pub, r.err)
			}
		}
		checkStored(t, h.js, evs, res)
		held += uint64(len(evs))
		if n := eventstest.StreamMessages(t, h.js, "ATTEMPTS"); n != held {
			t.Fatalf("%s: the stream holds %d messages, want %d", name, n, held)
		}
	}

	// In the stream, inside the window: refused by Nats-Msg-Id, re-sent without it.
	fresh := freshEvents(2)
	res := publishAll(t.Context(), h.b, append([]events.AttemptSubmitted{retryOf(origs[0])}, fresh...))
	checkDuplicate("inside the window", res[0], origs[0], first[0].pub.Seq)
	checkFresh("inside the window", fresh, res[1:])
	if st := h.stats(t); st.resends != 1 || st.batches != 2 {
		t.Fatalf("inside the window: metrics %+v; want the batch sent again once, without the duplicate", st)
	}

	// Twice in one batch: one is stored, the other is its duplicate.
	twin := freshEvents(3)
	twin[1] = retryOf(twin[0])
	res = publishAll(t.Context(), h.b, twin)
	if res[0].err != nil || res[1].err != nil || res[0].pub.Duplicate == res[1].pub.Duplicate {
		t.Fatalf("twice in one batch: %+v; want one stored and one duplicate", res)
	}
	stored, dup := res[0], res[1]
	if res[0].pub.Duplicate {
		stored, dup = res[1], res[0]
	}
	if dup.pub.Seq != stored.pub.Seq || !dup.pub.Event.SubmittedAt.Equal(stored.pub.Event.SubmittedAt) {
		t.Fatalf("twice in one batch: the duplicate %+v is not the stored %+v", dup.pub, stored.pub)
	}
	checkStored(t, h.js, twin[:1], []result{stored})
	held++
	checkFresh("twice in one batch", twin[2:], res[2:])
	twin = freshEvents(3)
	twin[1] = twin[0] // the very same call twice, beside another attempt
	res = publishAll(t.Context(), h.b, twin)
	if res[0].err != nil || res[1].err != nil || res[0].pub.Seq != res[1].pub.Seq || res[0].pub.Duplicate == res[1].pub.Duplicate {
		t.Fatalf("the same call twice: %+v", res[:2])
	}
	held++
	checkFresh("the same call twice", twin[2:], res[2:])

	// Past the window: refused by the subject guard, re-sent without it.
	time.Sleep(2 * window)
	fresh = freshEvents(2)
	res = publishAll(t.Context(), h.b, []events.AttemptSubmitted{fresh[0], retryOf(origs[1]), fresh[1]})
	checkDuplicate("after the window", res[1], origs[1], first[1].pub.Seq)
	checkFresh("after the window", fresh, []result{res[0], res[2]})
	if st := h.stats(t); st.resends != 2 {
		t.Fatalf("after the window: metrics %+v; want a second re-send", st)
	}

	// Nothing but duplicates: answered from the stream, nothing sent again.
	res = publishAll(t.Context(), h.b, []events.AttemptSubmitted{retryOf(origs[0]), retryOf(origs[1]), retryOf(origs[2])})
	for i, r := range res {
		checkDuplicate(fmt.Sprintf("only duplicates, %d", i), r, origs[i], first[i].pub.Seq)
	}
	if n := eventstest.StreamMessages(t, h.js, "ATTEMPTS"); n != held {
		t.Fatalf("only duplicates: the stream holds %d messages, want %d", n, held)
	}
}

// laggingTail is a Tail that sees nothing it holds until it is asked to
// catch up: a retry then reaches a batch, as it does when the tail lags.
type laggingTail struct {
	*tail.Tail
	caughtUp atomic.Bool
}

func (l *laggingTail) Held(student, attempt uuid.UUID) (eventlog.Published, bool) {
	if !l.caughtUp.Load() {
		return eventlog.Published{}, false
	}
	return l.Tail.Held(student, attempt)
}

func (l *laggingTail) CaughtUp(ctx context.Context) bool {
	ok := l.Tail.CaughtUp(ctx)
	l.caughtUp.Store(ok)
	return ok
}

// With an index (the API's tl, on another connection), a retry the
// index holds is answered from it without a publish, and a batch refused
// for a duplicate learns which one from the index: the original comes
// back, answers hash included, and the rest is stored once.
func TestBatcherAnswersWhatItsIndexHolds(t *testing.T) {
	ns := eventstest.NewServer(t)
	_, js := eventstest.Connect(t, ns)
	_, jsTail := eventstest.Connect(t, ns)
	lg, err := eventlog.NewLog(t.Context(), js, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tlog, err := eventlog.NewLog(t.Context(), jsTail, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := tail.NewTail(t.Context(), tlog, tail.TailConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tl.Close)
	index := &laggingTail{Tail: tl}
	b, err := eventlog.NewBatcher(t.Context(), lg, eventlog.BatchConfig{MaxMessages: 3, MinMessages: 2, Window: time.Minute, Index: index})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(eventlog.NewBatchCollector(b))
	h := &batcherHarness{js: js, log: lg, b: b, metrics: reg}
	// The originals come from another instance: b has not sent their ids,
	// so their retries reach its batches.
	other, err := eventlog.NewBatcher(t.Context(), lg, eventlog.BatchConfig{MaxMessages: 3, MinMessages: 2, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)

	origs := freshEvents(3)
	first := publishAll(t.Context(), other, origs)
	for i, r := range first {
		if r.err != nil || r.pub.Duplicate {
			t.Fatalf("original %d: %+v, %v", i, r.pub, r.err)
		}
	}
	retryOf := func(e events.AttemptSubmitted) events.AttemptSubmitted {
		e.Answers = []events.Answer{{QuestionID: "q", ChoiceID: "other"}}
		e.AnswersHash = events.HashAnswers(e.QuizID, e.Answers)
		e.SubmittedAt = e.SubmittedAt.Add(time.Second)
		return e
	}
	checkOriginal := func(name string, got result, i int) {
		t.Helper()
		orig := origs[i]
		if got.err != nil || !got.pub.Duplicate || got.pub.Seq != first[i].pub.Seq || got.pub.Event.AttemptID != orig.AttemptID ||
			got.pub.Event.StudentID != orig.StudentID || got.pub.Event.QuizID != orig.QuizID ||
			!got.pub.Event.SubmittedAt.Equal(orig.SubmittedAt) || !bytes.Equal(got.pub.Event.AnswersHash, orig.AnswersHash) {
			t.Fatalf("%s: %+v, %v; want the original at seq %d", name, got.pub, got.err, first[i].pub.Seq)
		}
	}

	// The tl lags: the retry joins a batch, which is refused; the tl,
	// caught up, names the duplicate and the rest goes again.
	fresh := freshEvents(2)
	res := publishAll(t.Context(), b, append([]events.AttemptSubmitted{retryOf(origs[0])}, fresh...))
	checkOriginal("in a batch", res[0], 0)
	for i, r := range res[1:] {
		if r.err != nil || r.pub.Duplicate {
			t.Fatalf("fresh attempt %d: %+v, %v", i, r.pub, r.err)
		}
	}
	checkStored(t, js, fresh, res[1:])
	if st := h.stats(t); st.resends != 1 || st.held != 1 || st.batches != 2 {
		t.Fatalf("in a batch: metrics %+v; want one re-send, the duplicate named by the index", st)
	}

	// The tl has caught up: retries it holds are answered at once,
	// without a batch or a message.
	for _, i := range []int{1, 2} {
		got, err := b.PublishAttempt(t.Context(), retryOf(origs[i]))
		checkOriginal(fmt.Sprint("held ", i), result{got, err}, i)
	}
	if st := h.stats(t); st.batches != 2 || st.held != 3 || st.unbatched != 0 {
		t.Fatalf("held: metrics %+v; want no publish for the two retries", st)
	}
	if n := eventstest.StreamMessages(t, js, "ATTEMPTS"); n != 5 {
		t.Fatalf("the stream holds %d messages, want 5", n)
	}
}

// A call whose context ends before its batch leaves publishes nothing.
func TestBatcherContextCancelled(t *testing.T) {
	h := newBatcher(t, streams.StreamConfig{}, eventlog.BatchConfig{MaxMessages: 2, Window: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e := freshEvents(1)[0]
	if _, err := h.b.PublishAttempt(ctx, e); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled context: %v", err)
	}

	// Cancelled while it waits for a second attempt to fill its batch.
	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := h.b.PublishAttempt(ctx, e)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in its window: %v", err)
	}
	other := freshEvents(1)[0]
	got, err := h.b.PublishAttempt(t.Context(), other)
	if err != nil || got.Seq != 1 {
		t.Fatalf("the next attempt: %+v, %v; want seq 1", got, err)
	}
	if n := eventstest.StreamMessages(t, h.js, "ATTEMPTS"); n != 1 {
		t.Fatalf("the stream holds %d messages, want only the uncancelled one", n)
	}
	// And the cancelled attempt, sent again, is new.
	if got, err := h.b.PublishAttempt(t.Context(), e); err != nil || got.Duplicate {
		t.Fatalf("the cancelled attempt sent again: %+v, %v", got, err)
	}
}

// A batch refused for any other reason (here, the stream is full) fails
// every call in it, and stores none of them.
func TestBatcherRefusedBatch(t *testing.T) {
	h := newBatcher(t, streams.StreamConfig{MaxBytes: 2048}, eventlog.BatchConfig{MaxMessages: 8, MinMessages: 2, Window: time.Minute})
	res := publishAll(t.Context(), h.b, freshEvents(8))
	for i, r := range res {
		var apiErr *jetstream.APIError
		if !errors.As(r.err, &apiErr) {
			t.Fatalf("caller %d of a batch over MaxBytes: %+v, %v", i, r.pub, r.err)
		}
	}
	if n := eventstest.StreamMessages(t, h.js, "ATTEMPTS"); n != 0 {
		t.Fatalf("the stream holds %d messages of a refused batch", n)
	}
	if st := h.stats(t); st.batches != 1 || st.resends != 0 || st.unbatched != 0 {
		t.Fatalf("metrics %+v; want one batch, not sent again", st)
	}
}

// On a stream without allow_atomic the Batcher publishes one attempt at a
// time, whether the stream said so at start or refuses a batch later.
func TestBatcherFallsBackWithoutAtomicBatches(t *testing.T) {
	disallow := func(t *testing.T, js jetstream.JetStream) {
		t.Helper()
		s, err := js.Stream(t.Context(), "ATTEMPTS")
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.AllowAtomicPublish = false
		if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, h *batcherHarness, wantBatches, wantUnbatched float64) {
		t.Helper()
		origs := freshEvents(3)
		evs := append(origs[:3:3], origs[0]) // and a duplicate
		res := publishAll(t.Context(), h.b, evs)
		dups := 0
		for i, r := range res {
			if r.err != nil || r.pub.Event.AttemptID != evs[i].AttemptID {
				t.Fatalf("caller %d: %+v, %v", i, r.pub, r.err)
			}
			if r.pub.Duplicate {
				dups++
			}
		}
		if dups != 1 || res[0].pub.Seq != res[3].pub.Seq {
			t.Fatalf("%d duplicates in %+v; want the repeated attempt once", dups, res)
		}
		checkStored(t, h.js, evs, res)
		if n := eventstest.StreamMessages(t, h.js, "ATTEMPTS"); n != 3 {
			t.Fatalf("the stream holds %d messages, want 3", n)
		}
		if h.b.Batching() {
			t.Fatal("Batching() = true on a stream without atomic batches")
		}
		if st := h.stats(t); st.batches != wantBatches || st.unbatched != wantUnbatched {
			t.Fatalf("metrics %+v; want %v batches and %v attempts published alone", st, wantBatches, wantUnbatched)
		}
	}

	t.Run("at start", func(t *testing.T) {
		_, js := eventstest.Connect(t, eventstest.NewServer(t))
		lg, err := eventlog.NewLog(t.Context(), js, streams.StreamConfig{})
		if err != nil {
			t.Fatal(err)
		}
		disallow(t, js)
		b, err := eventlog.NewBatcher(t.Context(), lg, eventlog.BatchConfig{MaxMessages: 4, MinMessages: 2, Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		reg := prometheus.NewRegistry()
		reg.MustRegister(eventlog.NewBatchCollector(b))
		check(t, &batcherHarness{js: js, log: lg, b: b, metrics: reg}, 0, 4)
	})
	t.Run("refused later", func(t *testing.T) {
		h := newBatcher(t, streams.StreamConfig{}, eventlog.BatchConfig{MaxMessages: 4, MinMessages: 2, Window: time.Minute})
		if !h.b.Batching() {
			t.Fatal("Batching() = false on a stream that allows atomic batches")
		}
		disallow(t, h.js)
		check(t, h, 1, 3) // the refused batch, then each of its 3 attempts alone
	})
}

func TestBatcherClose(t *testing.T) {
	h := newBatcher(t, streams.StreamConfig{}, eventlog.BatchConfig{})
	if _, err := h.b.PublishAttempt(t.Context(), freshEvents(1)[0]); err != nil {
		t.Fatal(err)
	}
	h.b.Close()
	h.b.Close()
	if _, err := h.b.PublishAttempt(t.Context(), freshEvents(1)[0]); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestBatchConfigValidation(t *testing.T) {
	h := newBatcher(t, streams.StreamConfig{}, eventlog.BatchConfig{})
	for _, cfg := range []eventlog.BatchConfig{{MaxMessages: 1001}, {MaxInflight: 50}, {MaxMessages: 10, MinMessages: 11}} {
		if _, err := eventlog.NewBatcher(t.Context(), h.log, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// A server whose max_batch_size is below MaxMessages refuses the batch
// whole; its attempts are then published one at a time.
func TestBatcherBatchTooLarge(t *testing.T) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), SyncAlways: true, NoLog: true, NoSigs: true,
		JetStreamLimits: server.JSLimitOpts{MaxBatchSize: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	_, js := eventstest.Connect(t, s)
	lg, err := eventlog.NewLog(t.Context(), js, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := eventlog.NewBatcher(t.Context(), lg, eventlog.BatchConfig{MaxMessages: 4, MinMessages: 2, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(eventlog.NewBatchCollector(b))
	h := &batcherHarness{js: js, log: lg, b: b, metrics: reg}
	evs := freshEvents(4)
	res := publishAll(t.Context(), b, evs)
	for i, r := range res {
		if r.err != nil || r.pub.Duplicate {
			t.Fatalf("caller %d: %+v, %v", i, r.pub, r.err)
		}
	}
	checkStored(t, js, evs, res)
	if st := h.stats(t); st.batches != 1 || st.unbatched != 4 {
		t.Fatalf("metrics %+v; want one refused batch and 4 attempts published alone", st)
	}
}
