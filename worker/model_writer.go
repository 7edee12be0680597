package worker

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// Defaults of the read model's worker (NewModelWorker): its batches are
// large and wait long to fill, so that a student's events of a busy
// second go into one put; the API's tail answers what the model has not
// folded yet, so the wait is not seen by reads.
const (
	DefaultModelBatchSize = 4000
	DefaultModelMaxWait   = 500 * time.Millisecond
	// settledPoll is how often a batch ahead of the writers asks their ack
	// floor again.
	settledPoll = 20 * time.Millisecond
)

// ModelWriter is the read model's projection as the worker loop runs it,
// on a consumer of its own (streams.ReadModelConsumer): it folds a batch
// of attempts once the writers have settled every one of them, as they
// settled it (recorded, or failed: one query a batch asks PostgreSQL
// which), through a Projector. Its acknowledgements hold only the model's
// own floor, never the writers': the model may lag, and fold a student's
// many events into one put.
type ModelWriter struct {
	projector *Projector
	store     *store.Store
	// settled reads the writers' ack floor.
	settled func(context.Context) (uint64, error)
}

// NewModelWorker returns the read model's Worker: from cons (the model's
// consumer), folding into model the attempts the writers' consumer
// writers settled into st. cfg's zero BatchSize and MaxWait take
// DefaultModelBatchSize and DefaultModelMaxWait.
func NewModelWorker(cons, writers jetstream.Consumer, model *readmodel.Model, st *store.Store, cfg Config) (*Worker, error) {
	if model == nil || st == nil || writers == nil {
		return nil, errors.New("worker: the read model's worker needs the model, the store and the writers' consumer")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultModelBatchSize
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultModelMaxWait
	}
	cfg.defaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	p := NewProjector(model, st, floorOf(cons), cfg.Logger)
	p.metrics, p.backoff = m, cfg.MaxBackoff
	return newWorker(streams.ReadModelConsumer, cons, NewModelWriter(p, st, floorOf(writers)), cfg, m)
}

// NewModelWriter returns a ModelWriter folding through p what the writers
// stored into st, settled reading their ack floor.
func NewModelWriter(p *Projector, st *store.Store, settled func(context.Context) (uint64, error)) *ModelWriter {
	return &ModelWriter{projector: p, store: st, settled: settled}
}

// floorOf reads cons's ack floor.
func floorOf(cons jetstream.Consumer) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, err
		}
		return info.AckFloor.Stream, nil
	}
}

// Write folds recs into the model once the writers settled them. A record
// that does not decode is the writers' to set aside: acknowledged here
// (nothing of it is stored). When ctx ends first, every record is
// Unsettled.
func (w *ModelWriter) Write(ctx context.Context, recs []Record) Outcome {
	var out Outcome
	var folds []readmodel.Fold
	var last uint64
	for i, r := range recs {
		e, err := events.DecodeAt(r.Subject, r.Data)
		switch {
		case err != nil && events.NewerSchema(r.Data):
			out.Newer = append(out.Newer, i)
		case err == nil:
			folds = append(folds, readmodel.Fold{Seq: r.Seq, Event: e})
			last = max(last, r.Seq)
		}
	}
	if len(folds) == 0 {
		return out
	}
	unsettled := func() Outcome {
		out.Unsettled = out.Unsettled[:0]
		for i := range recs {
			out.Unsettled = append(out.Unsettled, i)
		}
		out.Newer = nil
		return out
	}
	if err := w.waitSettled(ctx, last); err != nil {
		return unsettled()
	}
	ids := make([]uuid.UUID, len(folds))
	for i, f := range folds {
		ids[i] = f.Event.AttemptID
	}
	var statuses map[uuid.UUID]string
	err := retry.Do(ctx, retry.Policy{Max: w.projector.backoff}, retry.Always, nil, func() (err error) {
		statuses, err = w.store.AttemptStatuses(ctx, ids)
		return err
	})
	if err != nil {
		return unsettled()
	}
	// What the writers stored, as they stored it; an attempt they could
	// not store at all (its tombstone refused too) is not in the model.
	stored := folds[:0]
	for _, f := range folds {
		status, ok := statuses[f.Event.AttemptID]
		if !ok {
			continue
		}
		f.Failed = status == store.StatusFailed
		stored = append(stored, f)
	}
	if err := w.projector.Project(ctx, stored); err != nil {
		return unsettled()
	}
	out.Stored = int64(len(stored))
	return out
}

// waitSettled returns once the writers' ack floor is at least seq, or
// ctx's error.
func (w *ModelWriter) waitSettled(ctx context.Context, seq uint64) error {
	t := time.NewTicker(settledPoll)
	defer t.Stop()
	for {
		if floor, err := w.settled(ctx); err == nil && floor >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
