package app

import (
	"context"
	"errors"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/streams"
)

// openReadModel binds the student read model's bucket: a worker process
// writes it (its folds batched as the attempt publishes are), an API only
// reads it. Without the bucket an API reads PostgreSQL (every student
// read counted as a fallback); a worker has refused to start already
// (openStream: the bucket's stream is a declared, optional stream).
func (a *App) openReadModel(ctx context.Context) error {
	var err error
	if a.cfg.Workers > 0 {
		a.Model, err = readmodel.OpenWriter(ctx, a.JS, eventlog.BatchConfig{Logger: a.log})
	} else {
		a.Model, err = readmodel.Open(ctx, a.JS)
	}
	if errors.Is(err, streams.ErrNotApplied) && a.cfg.Workers == 0 {
		a.log.Warn("events: no read model bucket: student reads go to PostgreSQL; `quizstream stream apply` creates it",
			"bucket", streams.ReadModelBucket)
		return nil
	}
	return err
}
