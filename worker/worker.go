// Package worker moves attempts from the JetStream stream into PostgreSQL:
// fetch a batch, decode it, write it in one transaction, commit, then ack.
// It knows events and store, not HTTP.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// Defaults of Config, named once: the binary's settings use them too.
const (
	DefaultBatchSize       = 500
	DefaultMaxWait         = 100 * time.Millisecond
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultWriters is how many batch writers a worker process runs: two
	// overlap one batch's fetch and decoding with the other's transaction
	// (a backlog of 300,000 drained at 14,830/s with two, 8,662/s with one).
	DefaultWriters    = 2
	DefaultMaxBackoff = 2 * time.Second
	// DefaultStatementTimeout bounds each statement of a batch write: a
	// batch of 500 takes milliseconds, so anything near it is stuck.
	DefaultStatementTimeout = 30 * time.Second
	// DefaultMaxBatchHold bounds how long one batch is held (written and
	// retried) before it is handed back for any worker.
	DefaultMaxBatchHold      = 2 * time.Minute
	DefaultDeadLetterTimeout = 10 * time.Second
	DefaultNewerSchemaDelay  = 30 * time.Second
)

// Config configures a Worker.
type Config struct {
	// BatchSize is the most messages fetched and written at once. Defaults to 500.
	BatchSize int
	// MaxWait is how long a fetch waits to fill a batch. Defaults to 100ms.
	MaxWait time.Duration
	// AckWait must equal the consumer's; the worker reports progress on a
	// batch it still holds every half AckWait. Defaults to 30s.
	AckWait time.Duration
	// ShutdownTimeout bounds how long the worker keeps trying to store the
	// batch in hand once its context is cancelled; past it the batch is
	// left unacknowledged, to be redelivered. Defaults to 10s.
	ShutdownTimeout time.Duration
	// MaxBackoff caps the delay between retries of a failing write, and so
	// how long after PostgreSQL returns the worker may take to notice.
	// Defaults to 2s.
	MaxBackoff time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout for the batch
	// transactions: a statement stuck on a lock is cancelled (and retried)
	// rather than holding its locks and its batch. Negative leaves the
	// server's setting. Defaults to 30s.
	StatementTimeout time.Duration
	// MaxBatchHold bounds how long one batch is held, its write retried
	// meanwhile; past it the batch is handed back (Nak) and the worker
	// fetches again, so that a stuck batch cannot hold the ack floor for
	// ever. Defaults to 2 minutes.
	MaxBatchHold time.Duration
	// DeadLetterTimeout bounds the retries of one dead-letter write; past
	// it the poison message is left unacknowledged (redelivered after
	// AckWait) and the worker goes on. Defaults to 10s.
	DeadLetterTimeout time.Duration
	// NewerSchemaDelay is how long an event of a newer schema version than
	// this build knows is handed back for (NakWithDelay), for a newer
	// worker to take. Defaults to 30s.
	NewerSchemaDelay time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the worker's metrics. Defaults to none.
	Registerer prometheus.Registerer
}

// defaults fills the fields left zero; ExamConfig.defaults takes the
// fields the two share from here.
func (c *Config) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.AckWait <= 0 {
		c.AckWait = streams.DefaultAckWait
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.MaxBatchHold <= 0 {
		c.MaxBatchHold = DefaultMaxBatchHold
	}
	if c.DeadLetterTimeout <= 0 {
		c.DeadLetterTimeout = DefaultDeadLetterTimeout
	}
	if c.NewerSchemaDelay <= 0 {
		c.NewerSchemaDelay = DefaultNewerSchemaDelay
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// BatchWriter is an event family's projection as the worker loop runs it:
// it writes a batch of records in one transaction and says what became of
// each (Outcome). The attempts' Writer and the exams' ExamWriter are two.
type BatchWriter interface {
	Write(ctx context.Context, recs []Record) Outcome
}

// Worker runs the one fetch, decode, write, ack loop of every event
// family: it writes batches from a durable consumer through the family's
// BatchWriter, holds each batch (heartbeats, MaxBatchHold) while the write
// is retried, and settles every message by the Outcome. Any number of
// workers may share one consumer.
type Worker struct {
	family  string
	cons    jetstream.Consumer
	writer  BatchWriter
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// New returns an attempts Worker on cons and st, dead-lettering poison to
// deadLetters, or an error naming a bad Config field.
func New(cons jetstream.Consumer, st *store.Store, deadLetters *streams.DeadLetters, cfg Config) (*Worker, error) {
	if st == nil {
		return nil, errors.New("worker: the store is required")
	}
	cfg.defaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	wc := WriterConfig{DeadLetters: deadLetters, Tombstones: true, DeadLetterTimeout: cfg.DeadLetterTimeout, Logger: cfg.Logger}
	wr := NewWriter(st.WithStatementTimeout(cfg.StatementTimeout), wc)
	wr.maxBackoff, wr.metrics = cfg.MaxBackoff, m
	return newWorker("attempts", cons, wr, cfg, m)
}

// NewFamily returns a Worker of the event family named family, writing
// from cons through writer, or an error naming a bad Config field.
func NewFamily(family string, cons jetstream.Consumer, writer BatchWriter, cfg Config) (*Worker, error) {
	cfg.defaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return newWorker(family, cons, writer, cfg, m)
}

func newWorker(family string, cons jetstream.Consumer, writer BatchWriter, cfg Config, m *metrics) (*Worker, error) {
	if cons == nil || writer == nil {
		return nil, errors.New("worker: consumer and writer are required")
	}
	return &Worker{family: family, cons: cons, writer: writer, cfg: cfg, log: cfg.Logger.With("family", family), metrics: m}, nil
}

// Run fetches and stores batches until ctx is cancelled, then finishes the
// batch in hand (within ShutdownTimeout) and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker: started", "batch_size", w.cfg.BatchSize, "max_wait", w.cfg.MaxWait,
		"statement_timeout", w.cfg.StatementTimeout, "max_batch_hold", w.cfg.MaxBatchHold)
	fetchLoop(ctx, w.cons, w.cfg, w.log, w.handle)
	w.log.Info("worker: stopped")
	return nil
}

// fetchLoop fetches batches from cons, a fetch that fails retried with
// backoff, and hands each to handle, until ctx ends.
func fetchLoop(ctx context.Context, cons jetstream.Consumer, cfg Config, log *slog.Logger, handle func(context.Context, []jetstream.Msg)) {
	for ctx.Err() == nil {
		var msgs []jetstream.Msg
		err := retry.Do(ctx, retry.Policy{Max: cfg.MaxBackoff}, retry.Always, func(err error, d time.Duration) {
			log.Warn("worker: fetch failed", "err", err, "retry_in", d)
		}, func() (err error) {
			msgs, err = fetch(cons, cfg.BatchSize, cfg.MaxWait)
			return err
		})
		if err == nil && len(msgs) > 0 {
			handle(ctx, msgs)
		}
	}
}

// handle stores a fetched batch and settles every message: acked once the
// transaction holding it committed, terminated once set aside as poison,
// handed back (Nak) when shutdown came first or the batch was held past
// MaxBatchHold, handed back with a delay when it is of a newer schema, and
// left unacknowledged when it is poison that could not be set aside.
func (w *Worker) handle(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	// The batch in hand is finished even when ctx is cancelled meanwhile,
	// but only for ShutdownTimeout more, and never past MaxBatchHold.
	hold, release := holding(ctx, w.cfg.ShutdownTimeout)
	defer release()
	var heldTooLong atomic.Bool
	holdTimer := time.AfterFunc(w.cfg.MaxBatchHold, func() {
		heldTooLong.Store(true)
		release()
	})
	defer holdTimer.Stop()

	var wg sync.WaitGroup
	// Keep the batch ours while writes are retried.
	wg.Go(func() { heartbeat(hold, msgs, w.cfg.AckWait) })
	out := w.writer.Write(hold, records(msgs))
	holdTimer.Stop()
	release()
	wg.Wait()

	settled := make([]bool, len(msgs))
	for _, i := range out.Poison {
		settled[i] = true
		if err := msgs[i].TermWithReason("poison: set aside in the dead-letter stream"); err != nil {
			w.log.Warn("worker: term failed; the message will be redelivered", "err", err)
		}
	}
	heldOut := heldTooLong.Load() && ctx.Err() == nil
	for _, i := range out.Unsettled {
		settled[i] = true
		if heldOut {
			// Past its hold: back after a pause, so that the next fetch
			// takes other messages rather than the same stuck ones.
			_ = msgs[i].NakWithDelay(w.cfg.MaxBackoff)
			continue
		}
		_ = msgs[i].Nak() // the transaction rolled back: redeliver now, not after AckWait
	}
	for _, i := range out.Newer {
		settled[i] = true
		_ = msgs[i].NakWithDelay(w.cfg.NewerSchemaDelay)
	}
	for _, i := range out.Held {
		settled[i] = true // left unacknowledged: back after AckWait
	}
	for i, m := range msgs {
		if !settled[i] {
			if err := m.Ack(); err != nil {
				w.log.Warn("worker: ack failed; the message will be redelivered", "err", err)
			}
		}
	}
	switch {
	case len(out.Unsettled) > 0 && heldOut:
		w.metrics.handedBack.WithLabelValues(w.family, "hold").Inc()
		w.log.Error("worker: batch held past MAX_BATCH_HOLD; handed back for any worker", "messages", len(out.Unsettled),
			"max_batch_hold", w.cfg.MaxBatchHold)
	case len(out.Unsettled) > 0:
		w.metrics.handedBack.WithLabelValues(w.family, "shutdown").Inc()
		w.log.Warn("worker: batch abandoned at shutdown; left for redelivery", "messages", len(out.Unsettled))
	}
	w.metrics.messages.WithLabelValues(w.family, "stored").Add(float64(out.Stored))
	w.metrics.messages.WithLabelValues(w.family, "duplicate").Add(float64(out.Duplicates))
	w.metrics.messages.WithLabelValues(w.family, "poison").Add(float64(len(out.Poison)))
	w.metrics.messages.WithLabelValues(w.family, "held").Add(float64(len(out.Held)))
	w.metrics.messages.WithLabelValues(w.family, "newer_schema").Add(float64(len(out.Newer)))
	w.metrics.batchSeconds.WithLabelValues(w.family).Observe(time.Since(start).Seconds())
	w.metrics.batchSize.WithLabelValues(w.family).Observe(float64(len(msgs)))
	w.log.Debug("worker: batch settled", "messages", len(msgs), "stored", out.Stored, "poison", len(out.Poison))
}

// fetch returns up to n messages, waiting at most maxWait for them.
func fetch(cons jetstream.Consumer, n int, maxWait time.Duration) ([]jetstream.Msg, error) {
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(maxWait))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && len(msgs) == 0 {
		return nil, err
	}
	return msgs, nil
}

// holding returns a context that outlives ctx's cancellation by grace,
// for finishing what is in hand, and its release.
func holding(ctx context.Context, grace time.Duration) (context.Context, func()) {
	hold, release := context.WithCancel(context.WithoutCancel(ctx))
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, release)
		context.AfterFunc(hold, func() { t.Stop() })
	})
	return hold, func() { stopAfter(); release() }
}

// records are the messages of a fetched batch as the writers take them.
func records(msgs []jetstream.Msg) []Record {
	recs := make([]Record, len(msgs))
	for i, m := range msgs {
		recs[i] = Record{Subject: m.Subject(), Data: m.Data()}
		if md, err := m.Metadata(); err == nil {
			recs[i].Seq = md.Sequence.Stream
		}
	}
	return recs
}

// heartbeat tells the server every half ackWait that msgs are still in hand.
func heartbeat(ctx context.Context, msgs []jetstream.Msg, ackWait time.Duration) {
	t := time.NewTicker(ackWait / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, m := range msgs {
				_ = m.InProgress()
			}
		}
	}
}
