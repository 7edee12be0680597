package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/quizstream/quizstream/migrations"
)

// SchemaVersions returns the version of the database's schema (0 when no
// migration was ever applied) and the version of the newest migration
// this binary holds; current < target means the database needs Migrate.
// It takes no lock and changes nothing (goose's own check would create
// its version table); it returns an error when the database cannot be read.
func (s *Store) SchemaVersions(ctx context.Context) (current, target int64, err error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS) // reads only the files
	if err != nil {
		return 0, 0, fmt.Errorf("schema versions: %w", err)
	}
	sources := p.ListSources()
	target = sources[len(sources)-1].Version // NewProvider refuses an empty set
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, 0, wrap("schema versions", err)
	}
	if !exists {
		return 0, target, nil
	}
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version`).Scan(&current); err != nil {
		return 0, 0, wrap("schema versions", err)
	}
	return current, target, nil
}
