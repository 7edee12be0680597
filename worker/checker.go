package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
)

// Defaults of CheckerConfig, named once: the binary's settings use them too.
const (
	DefaultCheckDeadline     = 10 * time.Minute
	DefaultCheckConcurrency  = 8
	DefaultCheckRetryDelay   = 5 * time.Second
	exerciseCacheFor         = time.Minute
	checkerShutdownGraceTime = 5 * time.Second
)

// CheckerConfig configures a Checker.
type CheckerConfig struct {
	// Client is the code checker. Nil (no CHECKER_URL) keeps every
	// request queued: Run waits and takes none.
	Client *checker.Client
	// Deadline bounds a check from its request: past it, unfinished, it
	// ends as error (the student may submit again). Defaults to 10m.
	Deadline time.Duration
	// Concurrency is how many requests this process checks at once.
	// Defaults to 8.
	Concurrency int
	// RetryDelay is how long a request the checker could not take (its
	// breaker open, a transient failure) waits before it is delivered again.
	// Defaults to 5s.
	RetryDelay time.Duration
	// AckWait is the checkers' consumer's, as found: a request in hand is
	// heartbeat every half of it.
	AckWait time.Duration
	// Now is the clock. Defaults to time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Checker is the checker role: it pulls check requests from the
// checkers' durable consumer, publishes CodeCheckStarted, has the code
// checker run the program, publishes CodeCheckCompleted and only then
// acknowledges the request. A checker that dies mid-call leaves the request
// to be delivered again; the verdict's subject guard keeps a check from
// being completed twice.
type Checker struct {
	log     *eventlog.CheckLog
	cons    jetstream.Consumer
	store   *store.Store
	cfg     CheckerConfig
	logger  *slog.Logger
	handled *prometheus.CounterVec

	mu        sync.Mutex
	exercises map[uuid.UUID]cachedExercise
}

type cachedExercise struct {
	e  store.Exercise
	at time.Time
}

// NewChecker returns a Checker of the requests in log.
func NewChecker(ctx context.Context, log *eventlog.CheckLog, st *store.Store, cfg CheckerConfig) (*Checker, error) {
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultCheckDeadline
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultCheckConcurrency
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultCheckRetryDelay
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = log.Config().CheckerAckWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cons, err := log.CheckerConsumer(ctx)
	if err != nil {
		return nil, fmt.Errorf("checker consumer: %w", err)
	}
	c := &Checker{log: log, cons: cons, store: st, cfg: cfg, logger: cfg.Logger, exercises: map[uuid.UUID]cachedExercise{},
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_checker_requests_total",
			Help: "Check requests a checker settled, by result: passed, failed, error (completed), completed_before (acked, a verdict was in the stream), retry_later (handed back: the checker could not take it), poison.",
		}, []string{"result"}),
	}
	if cfg.Registerer != nil {
		if c.handled, err = register(cfg.Registerer, c.handled); err != nil {
			return nil, err
		}
		if err := cfg.Registerer.Register(&backlogCollector{log: log}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Ready reports why the role cannot check anything, or nil.
func (c *Checker) Ready(context.Context) error {
	if c.cfg.Client == nil {
		return errors.New("CHECKER_URL is not set: check requests are accepted and kept queued until a checker runs with one")
	}
	return nil
}

// Run checks requests until ctx ends, then finishes or hands back those in hand.
func (c *Checker) Run(ctx context.Context) error {
	if c.cfg.Client == nil {
		c.logger.Warn("checker: CHECKER_URL is not set; check requests stay queued")
		<-ctx.Done()
		return nil
	}
	c.logger.Info("checker: started", "concurrency", c.cfg.Concurrency, "deadline", c.cfg.Deadline)
	slots := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		free := c.cfg.Concurrency - len(slots)
		if free == 0 {
			select {
			case slots <- struct{}{}:
				<-slots
			case <-ctx.Done():
			}
			continue
		}
		batch, err := c.cons.Fetch(free, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			c.logger.Warn("checker: fetch failed", "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			continue
		}
		for m := range batch.Messages() {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				c.handle(ctx, m)
			}()
		}
	}
	return nil
}

// handle settles one request: ack once its verdict is in the stream, Nak
// (with a delay) when it must wait, Term when it can never be read.
func (c *Checker) handle(ctx context.Context, m jetstream.Msg) {
	e, err := events.DecodeCheckAt(m.Subject(), m.Data())
	if err != nil || e.Requested == nil {
		c.logger.Error("checker: poison check request", "subject", m.Subject(), "err", err)
		c.handled.WithLabelValues("poison").Inc()
		_ = m.Term()
		return
	}
	req := *e.Requested
	hold, stop := context.WithCancel(context.Background())
	defer stop()
	go heartbeat(hold, []jetstream.Msg{m}, c.cfg.AckWait)

	done, err := c.log.Completed(ctx, req.StudentID, req.CheckID)
	if err != nil {
		c.later(m, "read verdict", err)
		return
	}
	if done {
		c.handled.WithLabelValues("completed_before").Inc()
		c.ack(m)
		return
	}
	now := c.cfg.Now()
	deadline := req.SubmittedAt.Add(c.cfg.Deadline)
	if !now.Before(deadline) {
		c.complete(ctx, m, req, nil, checker.Result{Verdict: checker.VerdictError, Output: "the checker could not check the program in time: submit again"})
		return
	}
	if c.cfg.Client.BreakerState() == "open" {
		c.later(m, "breaker open", checker.ErrBreakerOpen)
		return
	}
	ex, err := c.exercise(ctx, req.ExerciseID)
	if errors.Is(err, store.ErrNotFound) {
		c.complete(ctx, m, req, nil, checker.Result{Verdict: checker.VerdictError, Output: "the exercise no longer exists"})
		return
	}
	if err != nil {
		c.later(m, "read exercise", err)
		return
	}
	meta, err := m.Metadata()
	if err != nil {
		c.later(m, "metadata", err)
		return
	}
	started := now.UTC().Truncate(time.Microsecond)
	if err := c.log.Start(ctx, events.CodeCheckStarted{CheckRef: req.CheckRef, Delivery: meta.NumDelivered, StartedAt: started}); err != nil {
		c.later(m, "publish start", err)
		return
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	res, err := c.cfg.Client.Check(cctx, checkerRequest(req, ex))
	cancel()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		_ = m.Nak() // shutting down: for another checker, at once
		return
	case checker.Retriable(err) && c.cfg.Now().Before(deadline):
		c.later(m, "check", err)
		return
	case checker.Retriable(err):
		res = checker.Result{Verdict: checker.VerdictError, Output: "the checker could not check the program in time: submit again"}
	default:
		c.logger.Warn("checker: the checker refused the program", "check_id", req.CheckID, "err", err)
	}
	c.complete(ctx, m, req, &started, res)
}

// complete publishes the verdict (retried until ctx ends), then acks.
func (c *Checker) complete(ctx context.Context, m jetstream.Msg, req events.CodeCheckRequested, started *time.Time, res checker.Result) {
	done := events.CodeCheckCompleted{CheckRef: req.CheckRef, ResultID: events.ResultID(req.CheckID), Status: string(res.Verdict),
		Output: res.Output, StartedAt: started, FinishedAt: c.cfg.Now().UTC().Truncate(time.Microsecond), Tests: []events.CheckTest{}}
	for _, t := range res.Tests {
		done.Tests = append(done.Tests, events.CheckTest(t))
	}
	if len(done.Output) > events.MaxCheckOutput {
		done.Output = done.Output[:events.MaxCheckOutput] // the client caps it; a guard, not a cut that matters
	}
	err := retry.Do(ctx, retry.Policy{Max: 5 * time.Second}, retry.Always, func(err error, d time.Duration) {
		c.logger.Warn("checker: publishing a verdict failed, retrying", "check_id", req.CheckID, "err", err, "retry_in", d)
	}, func() error {
		_, err := c.log.Complete(ctx, done)
		return err
	})
	if err != nil {
		_ = m.Nak()
		return
	}
	c.handled.WithLabelValues(done.Status).Inc()
	c.ack(m)
}

func (c *Checker) ack(m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), checkerShutdownGraceTime)
	defer cancel()
	if err := m.DoubleAck(ctx); err != nil {
		c.logger.Warn("checker: ack failed; the request comes back and is acked then", "err", err)
	}
}

// later hands a request back, to be delivered again after RetryDelay.
func (c *Checker) later(m jetstream.Msg, step string, err error) {
	c.logger.Debug("checker: request handed back", "step", step, "err", err)
	c.handled.WithLabelValues("retry_later").Inc()
	_ = m.NakWithDelay(c.cfg.RetryDelay)
}

// exercise returns an exercise's test cases, cached for a minute.
func (c *Checker) exercise(ctx context.Context, id uuid.UUID) (store.Exercise, error) {
	c.mu.Lock()
	ce, ok := c.exercises[id]
	c.mu.Unlock()
	if ok && time.Since(ce.at) < exerciseCacheFor {
		return ce.e, nil
	}
	e, err := c.store.Exercise(ctx, id)
	if err != nil {
		return e, err
	}
	c.mu.Lock()
	c.exercises[id] = cachedExercise{e: e, at: time.Now()}
	c.mu.Unlock()
	return e, nil
}

func checkerRequest(req events.CodeCheckRequested, ex store.Exercise) checker.Request {
	r := checker.Request{Language: req.Language, Source: req.Source}
	for _, t := range ex.Tests {
		r.Tests = append(r.Tests, checker.TestCase{Stdin: t.Stdin, Expected: t.Stdout, Hidden: t.Hidden})
	}
	return r
}

// backlogCollector reports the requests no checker has settled and the
// age of the oldest, read from the checkers' consumer at each scrape.
type backlogCollector struct{ log *eventlog.CheckLog }

var (
	queueDepthDesc = prometheus.NewDesc("quizstream_checker_queue_depth",
		"Check requests not yet settled by a checker (queued or being checked).", nil, nil)
	oldestQueuedDesc = prometheus.NewDesc("quizstream_checker_oldest_queued_age_seconds",
		"Age of the oldest check request not yet settled by a checker; 0 when none.", nil, nil)
)

func (b *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- oldestQueuedDesc
}

func (b *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, age, err := b.log.Backlog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestQueuedDesc, prometheus.GaugeValue, age.Seconds())
}
