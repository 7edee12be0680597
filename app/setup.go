package app

import (
	"context"
	"log/slog"

	"github.com/quizstream/quizstream/content"
	"github.com/quizstream/quizstream/store"
)

// Migrate brings the schema up to date and returns the error that stopped it.
func Migrate(ctx context.Context, st *store.Store, log *slog.Logger) error {
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info("migrate: schema is current", "applied", applied)
	return nil
}

// Seed imports the demo content file (content.Demo) as `quizstream content
// import` would (idempotent) and returns how many rows it changed, or the
// error that stopped it.
func Seed(ctx context.Context, st *store.Store, log *slog.Logger) (int64, error) {
	res, err := content.Import(ctx, st, content.Demo())
	if err != nil {
		return 0, err
	}
	log.Info("seed: demo content loaded", "rows_changed", res.RowsChanged)
	return res.RowsChanged, nil
}

// PrepareDatabase is what an all-in-one start needs before New: the
// database created when missing, migrated and seeded. It returns the first
// error.
func PrepareDatabase(ctx context.Context, url string, log *slog.Logger) error {
	created, err := store.EnsureDatabase(ctx, url)
	if err != nil {
		return err
	}
	if created {
		log.Info("dev: database created")
	}
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := Migrate(ctx, st, log); err != nil {
		return err
	}
	_, err = Seed(ctx, st, log)
	return err
}
