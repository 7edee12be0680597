// Package worker moves attempts from the JetStream stream into PostgreSQL:
// fetch a batch, decode it, write it in one transaction, commit, then ack.
// It knows events and store, not HTTP.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
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
	// MaxBackoff caps the delay between retries of a failing write. Defaults to 5s.
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
	store   *store.Store
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// New returns a Worker on cons and st, or an error naming a bad Config field.
func New(cons jetstream.Consumer, st *store.Store, cfg Config) (*Worker, error) {
	if cons == nil || st == nil {
		return nil, errors.New("worker: consumer and store are required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 100 * time.Millisecond
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Worker{cons: cons, store: st, cfg: cfg, log: cfg.Logger, metrics: m}, nil
}

// Run fetches and stores batches until ctx is cancelled, then finishes the
// batch in hand (within ShutdownTimeout) and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker: started", "batch_size", w.cfg.BatchSize, "max_wait", w.cfg.MaxWait)
	fetchBackoff := w.newBackoff()
	for ctx.Err() == nil {
		msgs, err := w.fetch()
		if err != nil {
			delay := fetchBackoff.NextBackOff()
			w.log.Warn("worker: fetch failed", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			continue
		}
		fetchBackoff.Reset()
		if len(msgs) > 0 {
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

// item is one fetched message and the row it becomes.
type item struct {
	msg jetstream.Msg
	row store.Attempt
}

// handle decodes a fetched batch, stores it and acks it. Messages that can
// never be stored are terminated; everything else is acked only after the
// transaction holding it committed, or left for redelivery.
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

	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		it, err := toItem(m)
		if err != nil {
			w.poison(m, err)
			continue
		}
		items = append(items, it)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // keep the batch ours while writes are retried
		defer wg.Done()
		w.heartbeat(hold, items)
	}()
	unsettled := w.write(hold, items)
	release()
	wg.Wait()

	w.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	w.metrics.batchSize.Observe(float64(len(msgs)))
	if len(unsettled) > 0 {
		// The transaction rolled back: hand the messages back for
		// immediate redelivery rather than after AckWait.
		w.log.Warn("worker: batch abandoned at shutdown; left for redelivery", "messages", len(unsettled))
		for _, it := range unsettled {
			_ = it.msg.Nak()
		}
	}
}

// write stores items, splitting the batch to isolate rows PostgreSQL
// refuses, and acks what it stored; it returns the items it could not
// settle (neither stored nor terminated) because ctx ended first.
func (w *Worker) write(ctx context.Context, items []item) (unsettled []item) {
	if len(items) == 0 {
		return nil
	}
	rows := make([]store.Attempt, len(items))
	for i, it := range items {
		rows[i] = it.row
	}
	var res store.InsertResult
	err := backoff.RetryNotify(func() error {
		var err error
		res, err = w.store.InsertAttempts(ctx, rows)
		if err != nil && store.IsDataError(err) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(w.newBackoff(), ctx), func(err error, d time.Duration) {
		w.metrics.retries.Inc()
		w.log.Warn("worker: write failed, retrying", "err", err, "messages", len(rows), "retry_in", d)
	})
	switch {
	case err == nil:
		for _, it := range items {
			if err := it.msg.Ack(); err != nil {
				w.log.Warn("worker: ack failed; the message will be redelivered", "err", err)
			}
		}
		w.metrics.messages.WithLabelValues("stored").Add(float64(res.Inserted))
		w.metrics.messages.WithLabelValues("duplicate").Add(float64(int64(len(items)) - res.Inserted))
		w.log.Debug("worker: batch committed", "messages", len(items), "inserted", res.Inserted)
		return nil
	case ctx.Err() != nil:
		return items
	case len(items) == 1:
		w.poison(items[0].msg, err)
		return nil
	}
	half := len(items) / 2
	return append(w.write(ctx, items[:half]), w.write(ctx, items[half:])...)
}

// poison terminates a message that can never be stored, so that it never
// blocks the stream; it stays in the stream for an operator to replay.
func (w *Worker) poison(m jetstream.Msg, reason error) {
	w.metrics.messages.WithLabelValues("poison").Inc()
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	w.log.Error("worker: poison message terminated", "stream_seq", seq, "subject", m.Subject(), "err", reason)
	if err := m.TermWithReason(reason.Error()); err != nil {
		w.log.Warn("worker: term failed", "err", err)
	}
}

func (w *Worker) heartbeat(ctx context.Context, items []item) {
	t := time.NewTicker(w.cfg.AckWait / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, it := range items {
				_ = it.msg.InProgress()
			}
		}
	}
}

func (w *Worker) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = w.cfg.MaxBackoff
	b.MaxElapsedTime = 0 // transient failures are retried until they pass
	return b
}

// toItem decodes a message into the row it becomes.
func toItem(m jetstream.Msg) (item, error) {
	e, err := events.Decode(m.Data())
	if err != nil {
		return item{}, err
	}
	md, err := m.Metadata()
	if err != nil {
		return item{}, fmt.Errorf("metadata: %w", err)
	}
	answers, err := json.Marshal(e.Answers)
	if err != nil {
		return item{}, fmt.Errorf("encode answers: %w", err)
	}
	return item{msg: m, row: store.Attempt{
		ID:             e.AttemptID,
		StudentID:      e.StudentID,
		QuizID:         e.QuizID,
		CourseID:       e.CourseID,
		IdempotencyKey: e.IdempotencyKey,
		Answers:        answers,
		AnswersHash:    e.AnswersHash,
		Score:          e.Score,
		MaxScore:       e.MaxScore,
		Status:         store.StatusRecorded,
		SubmittedAt:    e.SubmittedAt,
		StreamSeq:      md.Sequence.Stream,
	}}, nil
}
