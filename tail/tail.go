// Package tail is an API instance's view of what the stream holds and the
// workers have not settled yet: an ordered consumer from the ack floor into
// a bounded per-student index, for exact read-your-writes.
package tail

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
)

// Defaults of TailConfig.
const (
	DefaultTailMaxEvents     = 200_000
	DefaultTailMaxPerStudent = 1000
	DefaultTailFloorEvery    = 100 * time.Millisecond
	DefaultTailWaitTimeout   = time.Second
)

// TailConfig bounds a Tail.
type TailConfig struct {
	// MaxEvents bounds the unsettled attempts the tail holds in all; an
	// entry costs about 250 bytes, so the default holds about 50 MB. A
	// student whose events did not fit is read from the stream instead.
	// Defaults to 200000.
	MaxEvents int
	// MaxPerStudent bounds one student's unsettled attempts in the tail.
	// Defaults to 1000.
	MaxPerStudent int
	// FloorEvery is how often the tail reads the consumer's ack floor and
	// forgets what is settled. Defaults to 100ms.
	FloorEvery time.Duration
	// WaitTimeout bounds how long a read waits for the tail to reach the
	// stream's position; past it the read goes to the stream. Defaults to 1s.
	WaitTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the tail's metrics. Defaults to none.
	Registerer prometheus.Registerer
}

// Tail is an API instance's own view of the attempts not yet settled: it
// follows the stream (an ordered consumer from the ack floor) into a
// bounded index per student, and the ack floor as it moves, so that a
// student read costs no stream read of its own. Reads stay exact across
// instances: each waits until the tail has passed the stream's last
// sequence as it was when the read began, learnt in rounds that every read
// arriving meanwhile shares (one round trip a round, not a request). It
// answers the reads of Log (Attempt, StudentAttempts, AckFloor) and falls
// back to Log where its index cannot (a student over the bounds, a tail
// that lags). It is safe for concurrent use.
type Tail struct {
	log     *eventlog.Log
	cfg     TailConfig
	cons    jetstream.ConsumeContext
	stop    context.CancelFunc
	wg      sync.WaitGroup
	metrics tailMetrics

	floor     atomic.Uint64 // the ack floor as last read
	delivered atomic.Uint64 // the highest stream sequence the tail has seen

	mu       sync.Mutex
	students map[uuid.UUID]*studentTail
	// stored holds events this instance stored, by sequence, until the
	// stream delivers them: those need no decoding (Stored).
	stored   map[uint64]events.AttemptSubmitted
	order    []tailEntry // every indexed entry, by sequence, for eviction
	size     int
	advanced chan struct{} // closed and replaced whenever delivered grows

	rounds positionRounds
}

type studentTail struct {
	entries []eventlog.Published // by sequence
	// skippedTo is the highest sequence of this student's that did not fit:
	// while the floor is below it, the student is read from the stream.
	skippedTo uint64
}

type tailEntry struct {
	seq     uint64
	student uuid.UUID
}

type tailMetrics struct {
	events    prometheus.GaugeFunc
	fallbacks prometheus.Counter
	waits     prometheus.Histogram
}

// NewTail starts following l's stream from its ack floor; it returns once
// the ordered consumer is created, or the error that stopped it. Close
// stops it.
func NewTail(ctx context.Context, l *eventlog.Log, cfg TailConfig) (*Tail, error) {
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultTailMaxEvents
	}
	if cfg.MaxPerStudent <= 0 {
		cfg.MaxPerStudent = DefaultTailMaxPerStudent
	}
	if cfg.FloorEvery <= 0 {
		cfg.FloorEvery = DefaultTailFloorEvery
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultTailWaitTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Tail{log: l, cfg: cfg, students: map[uuid.UUID]*studentTail{}, stored: map[uint64]events.AttemptSubmitted{},
		advanced: make(chan struct{})}
	if err := t.register(cfg.Registerer); err != nil {
		return nil, err
	}
	floor, err := l.AckFloor(ctx)
	if err != nil {
		return nil, err
	}
	t.floor.Store(floor)
	t.delivered.Store(floor)
	oc := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if floor > 0 {
		oc.DeliverPolicy, oc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
	}
	c, err := l.OrderedConsumer(ctx, oc)
	if err != nil {
		return nil, fmt.Errorf("tail: ordered consumer: %w", err)
	}
	if t.cons, err = c.Consume(t.receive); err != nil {
		return nil, fmt.Errorf("tail: consume: %w", err)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	t.stop = stop
	t.rounds = positionRounds{ctx: bg, wg: &t.wg, lookup: l.LastSeq}
	t.wg.Add(1)
	go func() { defer t.wg.Done(); t.followFloor(bg) }()
	return t, nil
}

func (t *Tail) register(reg prometheus.Registerer) error {
	t.metrics = tailMetrics{
		events: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quizstream_api_tail_events", Help: "Unsettled attempts held in this instance's tail of the stream.",
		}, func() float64 { t.mu.Lock(); defer t.mu.Unlock(); return float64(t.size) }),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_api_tail_fallbacks_total", Help: "Student reads the tail could not answer, read from the stream instead.",
		}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quizstream_api_tail_wait_seconds", Help: "How long student reads waited for the tail to reach the stream's position.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
	}
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{t.metrics.events, t.metrics.fallbacks, t.metrics.waits} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Close stops following the stream and waits for the tail's goroutines.
func (t *Tail) Close() {
	t.cons.Stop()
	<-t.cons.Closed()
	t.stop()
	t.wg.Wait()
}

// receive indexes one event of the stream: as this instance stored it
// when it did (Stored), else decoded.
func (t *Tail) receive(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	seq := md.Sequence.Stream
	t.mu.Lock()
	e, ok := t.stored[seq]
	delete(t.stored, seq)
	t.mu.Unlock()
	if !ok {
		var d events.AttemptSubmitted
		d, err = events.DecodeAt(m.Subject(), m.Data())
		e, ok = trimmed(d), err == nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		t.add(eventlog.Published{Event: e, Seq: seq})
	}
	if seq > t.delivered.Load() {
		t.delivered.Store(seq)
		close(t.advanced)
		t.advanced = make(chan struct{})
	}
}

// Stored tells the tail of an event this instance has just stored at
// p.Seq (eventlog.Index): when the stream delivers it, the tail takes it as
// it is instead of decoding it again. It holds at most MaxEvents such
// events, and none the stream has delivered already.
func (t *Tail) Stored(p eventlog.Published) {
	if p.Duplicate {
		return // the stream's own event may differ from this call's
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.Seq > t.delivered.Load() && len(t.stored) < t.cfg.MaxEvents {
		t.stored[p.Seq] = trimmed(p.Event)
	}
}

// trimmed keeps what reads answer with, and the answers' hash that tells
// a retry from a reused key: not the answers.
func trimmed(e events.AttemptSubmitted) events.AttemptSubmitted {
	e.Answers, e.IdempotencyKey = nil, ""
	return e
}

// add indexes p; t.mu is held.
func (t *Tail) add(p eventlog.Published) {
	if p.Seq <= t.floor.Load() {
		return // settled already
	}
	st := t.students[p.Event.StudentID]
	if st == nil {
		st = &studentTail{}
		t.students[p.Event.StudentID] = st
	}
	if t.size >= t.cfg.MaxEvents || len(st.entries) >= t.cfg.MaxPerStudent {
		st.skippedTo = max(st.skippedTo, p.Seq)
		return
	}
	st.entries = append(st.entries, p)
	t.order = append(t.order, tailEntry{seq: p.Seq, student: p.Event.StudentID})
	t.size++
}

// followFloor reads the ack floor every FloorEvery and forgets what it
// settled, until ctx ends.
func (t *Tail) followFloor(ctx context.Context) {
	tick := time.NewTicker(t.cfg.FloorEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		floor, err := t.log.AckFloor(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				t.cfg.Logger.Debug("events: tail could not read the ack floor", "err", err)
			}
			continue
		}
		t.settle(floor)
	}
}

// settle moves the floor up and drops every entry at or below it.
func (t *Tail) settle(floor uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if floor <= t.floor.Load() {
		return
	}
	t.floor.Store(floor)
	n := 0
	for n < len(t.order) && t.order[n].seq <= floor {
		e := t.order[n]
		st := t.students[e.student]
		st.entries = st.entries[1:] // each student's entries are in sequence order too
		if len(st.entries) == 0 && st.skippedTo <= floor {
			delete(t.students, e.student)
		}
		n++
	}
	t.order = t.order[n:]
	t.size -= n
	if len(t.order) == 0 {
		t.order = nil // let the backing array go
	}
	for seq := range t.stored { // ones the stream never delivered (removed first)
		if seq <= floor {
			delete(t.stored, seq)
		}
	}
}

// AckFloor returns the ack floor as the tail last read it: never newer
// than the true floor, which is what student reads need. It returns an
// error only if no floor was ever read.
func (t *Tail) AckFloor(context.Context) (uint64, error) { return t.floor.Load(), nil }

// Ping reports whether the stream answers.
func (t *Tail) Ping(ctx context.Context) error { return t.log.Ping(ctx) }

// caughtUp waits until the tail has seen every event the stream held when
// it was called, or up to the position ctx carries (WithPosition); false
// means it did not within WaitTimeout (or ctx ended).
func (t *Tail) caughtUp(ctx context.Context) bool {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, t.cfg.WaitTimeout)
	defer cancel()
	pos, known := positionOf(ctx)
	if !known {
		var err error
		if pos, err = t.rounds.position(ctx); err != nil {
			return false
		}
	}
	for {
		t.mu.Lock()
		reached, advanced := t.delivered.Load() >= pos, t.advanced
		t.mu.Unlock()
		if reached {
			t.metrics.waits.Observe(time.Since(start).Seconds())
			return true
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return false
		}
	}
}

// StudentAttempts returns up to max of a student's events above after,
// oldest first, from the tail once it has caught up with the stream; from
// the stream when it cannot answer. The result is taken at once: call it
// before reading PostgreSQL, so that whatever the tail forgets afterwards
// was settled before that read.
func (t *Tail) StudentAttempts(ctx context.Context, student uuid.UUID, after uint64, max int) ([]eventlog.Published, error) {
	var out []eventlog.Published
	if _, ok := t.snapshot(ctx, student, after, max, &out); ok {
		return out, nil
	}
	t.metrics.fallbacks.Inc()
	return t.log.StudentAttempts(ctx, student, after, max)
}

// CountStudentAttempts returns len(StudentAttempts(ctx, student, after,
// max)) without copying the events, as a limit needs.
func (t *Tail) CountStudentAttempts(ctx context.Context, student uuid.UUID, after uint64, max int) (int, error) {
	if n, ok := t.snapshot(ctx, student, after, max, nil); ok {
		return n, nil
	}
	t.metrics.fallbacks.Inc()
	out, err := t.log.StudentAttempts(ctx, student, after, max)
	return len(out), err
}

// snapshot counts up to max of a student's events above after, appending
// them to out unless it is nil; false when the tail cannot answer.
func (t *Tail) snapshot(ctx context.Context, student uuid.UUID, after uint64, max int, out *[]eventlog.Published) (int, bool) {
	if !t.caughtUp(ctx) {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.students[student]
	if st == nil {
		return 0, true // nothing of theirs is unsettled
	}
	if st.skippedTo > t.floor.Load() {
		return 0, false // some of theirs did not fit
	}
	n := 0
	for _, p := range st.entries {
		if n == max {
			break
		}
		if p.Seq > after {
			if out != nil {
				*out = append(*out, p)
			}
			n++
		}
	}
	return n, true
}

// Held returns a student's attempt when the tail holds it, without
// waiting: the stream's own event, answers left out (eventlog.Index).
func (t *Tail) Held(student, attempt uuid.UUID) (eventlog.Published, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.students[student]; st != nil {
		for _, p := range st.entries {
			if p.Event.AttemptID == attempt {
				return p, true
			}
		}
	}
	return eventlog.Published{}, false
}

// CaughtUp waits until the tail holds every event the stream held when it
// was called (eventlog.Index); false if it did not within WaitTimeout.
func (t *Tail) CaughtUp(ctx context.Context) bool { return t.caughtUp(ctx) }

// Attempt returns one attempt's event: from the tail when it holds it,
// else from the stream (it may be settled, or never have existed).
func (t *Tail) Attempt(ctx context.Context, student, attempt uuid.UUID) (eventlog.Published, error) {
	if t.caughtUp(ctx) {
		if p, ok := t.Held(student, attempt); ok {
			return p, nil
		}
	}
	return t.log.Attempt(ctx, student, attempt)
}

type positionKey struct{}

// WithPosition returns a context for a student read that need only reflect
// the stream up to seq: a Tail then waits for its own view to pass seq,
// without learning the stream's position. A client that sends back the
// sequence of its last 202 reads its writes exactly, at no round trip;
// seq 0 takes the view as it is (a count that may lag, such as a limit's).
func WithPosition(ctx context.Context, seq uint64) context.Context {
	return context.WithValue(ctx, positionKey{}, seq)
}

func positionOf(ctx context.Context) (uint64, bool) {
	seq, ok := ctx.Value(positionKey{}).(uint64)
	return seq, ok
}

// positionRounds learns the stream's last sequence for reads: a read joins
// the next lookup that starts after it arrived, never one already in
// flight (that one may predate the write the read must see), so all reads
// arriving during one lookup share the following one.
type positionRounds struct {
	ctx    context.Context // ends when the tail closes
	wg     *sync.WaitGroup // the tail's, which Close waits for
	lookup func(ctx context.Context) (uint64, error)

	mu      sync.Mutex
	running bool
	next    *round
}

type round struct {
	done chan struct{}
	seq  uint64
	err  error
}

func (p *positionRounds) position(ctx context.Context) (uint64, error) {
	p.mu.Lock()
	if p.next == nil {
		p.next = &round{done: make(chan struct{})}
	}
	r := p.next
	if !p.running {
		p.start()
	}
	p.mu.Unlock()
	select {
	case <-r.done:
		return r.seq, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// start runs the pending round; p.mu is held.
func (p *positionRounds) start() {
	r := p.next
	p.next, p.running = nil, true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		r.seq, r.err = p.lookup(ctx)
		cancel()
		close(r.done)
		p.mu.Lock()
		p.running = false
		if p.next != nil {
			p.start()
		}
		p.mu.Unlock()
	}()
}
