package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// Defaults of ExamConfig.
const (
	DefaultFinalizers      = 64
	DefaultFinalizeTimeout = 10 * time.Second
)

// ExamConfig configures an ExamWorker.
type ExamConfig struct {
	// BatchSize is the most events (or fired timers) fetched at once. Defaults to 500.
	BatchSize int
	// MaxWait is how long a fetch waits to fill a batch; it bounds how late
	// after a timer fires its session is finalized. Defaults to 100ms.
	MaxWait time.Duration
	// AckWait must equal the consumers' (streams.ExamStreamConfig.AckWait).
	// Defaults to 30s.
	AckWait time.Duration
	// ShutdownTimeout bounds finishing the batch in hand once ctx is
	// cancelled. Defaults to 10s.
	ShutdownTimeout time.Duration
	// MaxBackoff caps the delay between retries of a failing write.
	// Defaults to 2s.
	MaxBackoff time.Duration
	// Finalizers bounds the sessions finalized at once. Defaults to 64.
	Finalizers int
	// FinalizeTimeout bounds finalizing one session (its reads and
	// publishes); past it the timer is delivered again. Defaults to 10s.
	FinalizeTimeout time.Duration
	// Projector, when set, folds every committed batch of session events
	// into the read model before it is acknowledged.
	Projector *Projector
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the worker's metrics. Defaults to none.
	Registerer prometheus.Registerer
}

func (c *ExamConfig) defaults() {
	if c.AckWait <= 0 {
		c.AckWait = streams.DefaultFinalizerAckWait
	}
	// The fields ExamConfig shares with Config default as Config's do.
	shared := Config{BatchSize: c.BatchSize, MaxWait: c.MaxWait, AckWait: c.AckWait,
		ShutdownTimeout: c.ShutdownTimeout, MaxBackoff: c.MaxBackoff, Logger: c.Logger}
	shared.defaults()
	c.BatchSize, c.MaxWait, c.ShutdownTimeout, c.MaxBackoff, c.Logger =
		shared.BatchSize, shared.MaxWait, shared.ShutdownTimeout, shared.MaxBackoff, shared.Logger
	if c.Finalizers <= 0 {
		c.Finalizers = DefaultFinalizers
	}
	if c.FinalizeTimeout <= 0 {
		c.FinalizeTimeout = DefaultFinalizeTimeout
	}
}

// ExamWorker runs the two loops of timed exams: the writer, which
// projects session events into PostgreSQL (and makes sure every finalized
// session's attempt is in the attempts stream), and the finalizer, which
// finalizes a session from its saved answers when its timer fires. Neither
// keeps state: any number of ExamWorkers share the two durable consumers,
// and one killed at any instant loses nothing (its messages are delivered
// again). The finalizer needs neither PostgreSQL nor the content: a
// session's start holds its answer key.
type ExamWorker struct {
	writerCons    jetstream.Consumer
	finalizerCons jetstream.Consumer
	exams         *eventlog.ExamLog
	attemptsLog   *eventlog.Log
	store         *store.Store
	cfg           ExamConfig
	log           *slog.Logger
	metrics       *examMetrics
	// Set by Run: the attempts publisher (an eventlog.Batcher over
	// attemptsLog: many sessions end at once at a shared deadline) and the
	// writer that uses it.
	attempts AttemptPublisher
	writer   *ExamWriter
}

// NewExamWorker returns an ExamWorker on exams' two consumers, storing
// into st and publishing attempts into attempts' stream; it returns an
// error naming what is missing or the lookup that failed.
func NewExamWorker(ctx context.Context, exams *eventlog.ExamLog, st *store.Store, attempts *eventlog.Log, cfg ExamConfig) (*ExamWorker, error) {
	if exams == nil || st == nil || attempts == nil {
		return nil, errors.New("worker: the exam log, store and attempts publisher are required")
	}
	cfg.defaults()
	wc, err := exams.WriterConsumer(ctx)
	if err != nil {
		return nil, err
	}
	fc, err := exams.FinalizerConsumer(ctx)
	if err != nil {
		return nil, err
	}
	m, err := newExamMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &ExamWorker{writerCons: wc, finalizerCons: fc, exams: exams, attemptsLog: attempts, store: st,
		cfg: cfg, log: cfg.Logger, metrics: m}, nil
}

// Run writes events and finalizes due sessions until ctx is cancelled,
// then finishes what it holds (within ShutdownTimeout) and returns nil.
// The session events go through the one worker loop every family runs
// (Worker, with the ExamWriter as the family's projection); the fired
// timers through the finalizer's loop.
func (w *ExamWorker) Run(ctx context.Context) error {
	w.log.Info("worker: exam loops started", "batch_size", w.cfg.BatchSize, "finalizers", w.cfg.Finalizers)
	w.attempts = w.attemptsLog
	if b, err := eventlog.NewBatcher(ctx, w.attemptsLog, eventlog.BatchConfig{Logger: w.log}); err == nil {
		defer b.Close() // after both loops, and their publishes, have ended
		w.attempts = b
	} else {
		w.log.Warn("worker: attempts of finalized sessions published one at a time", "err", err)
	}
	w.writer = NewExamWriter(w.store, ExamWriterConfig{Attempts: w.attempts, Projector: w.cfg.Projector, Logger: w.log})
	w.writer.maxBackoff = w.cfg.MaxBackoff
	loop := Config{BatchSize: w.cfg.BatchSize, MaxWait: w.cfg.MaxWait, AckWait: w.cfg.AckWait,
		ShutdownTimeout: w.cfg.ShutdownTimeout, MaxBackoff: w.cfg.MaxBackoff, Logger: w.cfg.Logger, Registerer: w.cfg.Registerer}
	events, err := NewFamily("exams", w.writerCons, w.writer, loop)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = events.Run(ctx) })
	wg.Go(func() { fetchLoop(ctx, w.finalizerCons, loop, w.log.With("loop", "exam timers"), w.finalizeBatch) })
	wg.Wait()
	w.log.Info("worker: exam loops stopped")
	return nil
}

// finalizeBatch finalizes the sessions of a batch of fired timers, at most
// Finalizers at once, and settles each timer.
func (w *ExamWorker) finalizeBatch(ctx context.Context, msgs []jetstream.Msg) {
	hold, release := holding(ctx, w.cfg.ShutdownTimeout)
	defer release()
	sem := make(chan struct{}, w.cfg.Finalizers)
	var wg sync.WaitGroup
	for _, m := range msgs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			w.finalize(hold, m)
		})
	}
	wg.Wait()
}

// finalize handles one fired timer: the session is finalized by its
// deadline from its saved answers (unless it ended before), its attempt
// published, and only then is the timer acknowledged. A timer that
// cannot be handled now is handed back with a delay.
func (w *ExamWorker) finalize(ctx context.Context, m jetstream.Msg) {
	due, err := events.DecodeExamDueAt(m.Subject(), m.Data())
	if err != nil {
		w.log.Error("worker: undecodable exam timer", "subject", m.Subject(), "err", err)
		_ = m.TermWithReason("undecodable exam timer")
		w.metrics.finalized.WithLabelValues("poison").Inc()
		return
	}
	if wait := time.Until(due.DueAt); wait > 0 {
		_ = m.NakWithDelay(wait) // the server fired early (its clock is ahead of ours)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.FinalizeTimeout)
	defer cancel()
	retryLater := func(what string, err error) {
		w.log.Warn("worker: finalizing a session failed; its timer will be delivered again",
			"session_id", due.SessionID, "step", what, "err", err)
		_ = m.NakWithDelay(w.cfg.MaxBackoff)
	}
	s, err := w.exams.QuizSession(ctx, due.StudentID, due.QuizID, due.SessionID)
	switch {
	case errors.Is(err, eventlog.ErrNoSession):
		// The start that armed it was never stored (its publish failed
		// after the timer's; the client had a 503).
		_ = m.Ack()
		w.metrics.finalized.WithLabelValues("no_session").Inc()
		return
	case err != nil:
		retryLater("read", err)
		return
	}
	by := "earlier"
	f := s.Final
	if f == nil {
		if wait := time.Until(s.Started.Cutoff()); wait > 0 {
			_ = m.NakWithDelay(wait) // a timer armed by an earlier try of the start
			return
		}
		var final events.ExamFinalized
		if final, _, err = w.exams.Finalize(ctx, s, events.FinalizedByDeadline, s.Started.Deadline); err != nil {
			retryLater("finalize", err)
			return
		}
		f, by = &final, final.By
	}
	if _, err := w.attempts.PublishAttempt(ctx, f.Attempt()); err != nil {
		retryLater("publish attempt", err)
		return
	}
	if err := m.Ack(); err != nil {
		w.log.Warn("worker: ack of an exam timer failed; it will be delivered again", "err", err)
	}
	w.metrics.finalized.WithLabelValues(by).Inc()
	if by == events.FinalizedByDeadline {
		w.metrics.lateness.Observe(time.Since(due.DueAt).Seconds())
	}
}

type examMetrics struct {
	finalized *prometheus.CounterVec
	lateness  prometheus.Histogram
}

func newExamMetrics(reg prometheus.Registerer) (*examMetrics, error) {
	m := &examMetrics{
		finalized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_exam_timers_total",
			Help: "Exam timers settled, by outcome: deadline (the session finalized by it), earlier (it had ended before), no_session, poison.",
		}, []string{"outcome"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quizstream_exam_finalize_lateness_seconds",
			Help:    "Time from a timer's due time to its session's finalization at the deadline.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.finalized, err = register(reg, m.finalized); err != nil {
		return nil, err
	}
	if m.lateness, err = register(reg, m.lateness); err != nil {
		return nil, err
	}
	return m, nil
}
