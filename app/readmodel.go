package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// openReadModel binds the student read model's bucket, its writes batched
// as the attempt publishes are. Without the bucket an API reads PostgreSQL (every student
// read counted as a fallback); a worker has refused to start already
// (openStream: the bucket's stream is a declared, optional stream).
func (a *App) openReadModel(ctx context.Context) error {
	if !a.cfg.Stream.ReadModel {
		return nil
	}
	// Both write: workers fold, and an API stores the value of a student
	// the model lacks (worker.SeedModel).
	var err error
	a.Model, err = readmodel.OpenWriter(ctx, a.JS, eventlog.BatchConfig{Logger: a.log})
	if errors.Is(err, streams.ErrNotApplied) && a.cfg.Workers == 0 {
		a.log.Warn("events: no read model bucket: student reads go to PostgreSQL; `quizstream stream apply` creates it",
			"bucket", streams.ReadModelBucket)
		return nil
	}
	return err
}

// apiModel is the API's read model: reads from the bucket, and values of
// students it lacks built from PostgreSQL.
type apiModel struct {
	*readmodel.Model
	store *store.Store
}

var _ api.ReadModel = apiModel{}

func (m apiModel) Seed(ctx context.Context, student uuid.UUID, floor uint64) (readmodel.Student, error) {
	return worker.SeedModel(ctx, m.Model, m.store, student, floor)
}

func (m apiModel) SeedSessions(ctx context.Context, student uuid.UUID) (readmodel.Sessions, error) {
	return worker.SeedSessions(ctx, m.Model, m.store, student)
}

func (m apiModel) SeedChecks(ctx context.Context, student uuid.UUID) (readmodel.Checks, error) {
	return worker.SeedChecks(ctx, m.Model, m.store, student)
}

// buildModelWorker adds the read model's fold loop when the model is on:
// one a process (its batches are large; any number of processes share the
// model's consumer), behind the writers' consumer writers, configured as
// the writers are (wc) but for its batches.
func (a *App) buildModelWorker(ctx context.Context, writers jetstream.Consumer, wc worker.Config) error {
	if a.Model == nil {
		return nil
	}
	mc, err := a.JS.Consumer(ctx, a.cfg.Stream.Name, streams.ReadModelConsumer)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", streams.ReadModelConsumer, err)
	}
	wc.BatchSize, wc.MaxWait = 0, 0 // the model's own defaults
	wc.AckWait = a.ackWait[streams.ReadModelConsumer]
	w, err := worker.NewModelWorker(mc, writers, a.Model, a.Store, wc)
	if err != nil {
		return err
	}
	a.Workers = append(a.Workers, w)
	return nil
}
