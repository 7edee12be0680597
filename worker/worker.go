// Package worker moves attempts from the JetStream stream into PostgreSQL:
// fetch a batch, decode it, write it in one transaction, commit, then ack.
// It knows events and store, not HTTP.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
)

// Defaults of Config, named once: the binary's settings use them too.
const (
	DefaultBatchSize       = 500
	DefaultMaxWait         = 100 * time.Millisecond
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxBackoff      = 2 * time.Second
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
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the worker's metrics. Defaults to none.
	Registerer prometheus.Registerer
}

// Worker writes attempts from a durable consumer into the store. Any number
// of workers may share one consumer.
type Worker struct {
	cons    jetstream.Consumer
	writer  *Writer
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// New returns a Worker on cons and st, dead-lettering poison to
// deadLetters, or an error naming a bad Config field.
func New(cons jetstream.Consumer, st *store.Store, deadLetters *events.DeadLetters, cfg Config) (*Worker, error) {
	if cons == nil || st == nil {
		return nil, errors.New("worker: consumer and store are required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = events.DefaultAckWait
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	wr := NewWriter(st, WriterConfig{DeadLetters: deadLetters, Tombstones: true, Logger: cfg.Logger})
	wr.maxBackoff, wr.metrics = cfg.MaxBackoff, m
	return &Worker{cons: cons, writer: wr, cfg: cfg, log: cfg.Logger, metrics: m}, nil
}

// Run fetches and stores batches until ctx is cancelled, then finishes the
// batch in hand (within ShutdownTimeout) and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker: started", "batch_size", w.cfg.BatchSize, "max_wait", w.cfg.MaxWait)
	for ctx.Err() == nil {
		var msgs []jetstream.Msg
		err := retry.Do(ctx, retry.Policy{Max: w.cfg.MaxBackoff}, retry.Always, func(err error, d time.Duration) {
			w.log.Warn("worker: fetch failed", "err", err, "retry_in", d)
		}, func() (err error) {
			msgs, err = w.fetch()
			return err
		})
		if err == nil && len(msgs) > 0 {
			w.handle(ctx, msgs)
		}
	}
	w.log.Info("worker: stopped")
	return nil
}

func (w *Worker) fetch() ([]jetstream.Msg, error) {
	batch, err := w.cons.Fetch(w.cfg.BatchSize, jetstream.FetchMaxWait(w.cfg.MaxWait))
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

// handle stores a fetched batch and settles every message: acked once the
// transaction holding it committed, terminated once set aside as poison,
// or handed back (Nak) when shutdown came first.
func (w *Worker) handle(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	// The batch in hand is finished even when ctx is cancelled meanwhile,
	// but only for ShutdownTimeout more.
	hold, release := context.WithCancel(context.WithoutCancel(ctx))
	defer release()
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(w.cfg.ShutdownTimeout, release)
		context.AfterFunc(hold, func() { t.Stop() })
	})
	defer stopAfter()

	recs := make([]Record, len(msgs))
	for i, m := range msgs {
		recs[i] = Record{Subject: m.Subject(), Data: m.Data()}
		if md, err := m.Metadata(); err == nil {
			recs[i].Seq = md.Sequence.Stream
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // keep the batch ours while writes are retried
		defer wg.Done()
		w.heartbeat(hold, msgs)
	}()
	out := w.writer.Write(hold, recs)
	release()
	wg.Wait()

	settled := make([]bool, len(msgs))
	for _, i := range out.Poison {
		settled[i] = true
		if err := msgs[i].TermWithReason("poison: set aside in the dead-letter stream"); err != nil {
			w.log.Warn("worker: term failed; the message will be redelivered", "err", err)
		}
	}
	for _, i := range out.Unsettled {
		settled[i] = true
		_ = msgs[i].Nak() // the transaction rolled back: redeliver now, not after AckWait
	}
	for i, m := range msgs {
		if !settled[i] {
			if err := m.Ack(); err != nil {
				w.log.Warn("worker: ack failed; the message will be redelivered", "err", err)
			}
		}
	}
	if len(out.Unsettled) > 0 {
		w.log.Warn("worker: batch abandoned at shutdown; left for redelivery", "messages", len(out.Unsettled))
	}
	w.metrics.messages.WithLabelValues("stored").Add(float64(out.Stored))
	w.metrics.messages.WithLabelValues("duplicate").Add(float64(out.Duplicates))
	w.metrics.messages.WithLabelValues("poison").Add(float64(len(out.Poison)))
	w.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	w.metrics.batchSize.Observe(float64(len(msgs)))
	w.log.Debug("worker: batch settled", "messages", len(msgs), "stored", out.Stored, "poison", len(out.Poison))
}

func (w *Worker) heartbeat(ctx context.Context, msgs []jetstream.Msg) {
	t := time.NewTicker(w.cfg.AckWait / 2)
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
