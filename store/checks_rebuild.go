package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The shadow tables of a checks rebuild, shaped as the live ones (LIKE
// ... INCLUDING ALL); the swap gives their indexes the live names.
const (
	checksShadow = "checks_rebuild"
	passesShadow = "exercise_passes_rebuild"
)

// checksRebuildLockKey is the advisory lock that keeps two rebuilds of
// the checks projection apart.
const checksRebuildLockKey = 7239004

// CheckRebuild rebuilds the checks projection (checks and
// exercise_passes) into shadow tables beside the live ones, with the
// statement the check writers fold with (foldChecksSQL), compares them
// with the live ones and swaps them in. Close it when done.
type CheckRebuild struct {
	shadows
}

// StartCheckRebuild takes the checks rebuild lock and creates empty
// shadow tables, replacing any an earlier rebuild left behind. It returns
// ErrRebuildRunning when another rebuild of checks holds the lock.
func (s *Store) StartCheckRebuild(ctx context.Context) (*CheckRebuild, error) {
	sh, err := s.startShadows(ctx, "checks", checksRebuildLockKey, checksShadow+`, `+passesShadow,
		`CREATE TABLE `+checksShadow+` (LIKE checks INCLUDING ALL)`,
		`CREATE TABLE `+passesShadow+` (LIKE exercise_passes INCLUDING ALL)`)
	if err != nil {
		return nil, err
	}
	return &CheckRebuild{sh}, nil
}

// Fold folds rows (CheckRow of events read in stream order) into the
// shadow, as WriteChecks folds them into the live tables, and returns how
// many rows it inserted or advanced; an error means it folded none.
func (r *CheckRebuild) Fold(ctx context.Context, rows []Check) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	args, err := checkArrays(rows)
	if err != nil {
		return 0, fmt.Errorf("fold checks rebuild: %w", err)
	}
	var res CheckWriteResult
	err = r.s.pool.QueryRow(ctx, foldChecksSQL(checksShadow, passesShadow, checkBatchSQL), args...).Scan(&res.Changed, &res.Passes)
	return res.Changed, wrap("fold checks rebuild", err)
}

// foldLiveSQL folds into the shadow the live rows whose events the
// rebuild did not read: those below $1, the first sequence it read (their
// events are gone from the stream), and those above $2, the last one
// (stored since). It returns the rows it changed.
var foldLiveSQL = foldChecksSQL(checksShadow, passesShadow,
	`SELECT `+checkRowColumns+` FROM checks WHERE stream_seq < $1 OR stream_seq > $2`)

// CheckDiffRow is one check whose live and rebuilt rows differ; a side
// without the row has a nil status.
type CheckDiffRow struct {
	CheckID, StudentID        uuid.UUID
	LiveStatus, RebuiltStatus *string
}

// CheckDiff compares the live checks projection with the rebuilt one.
type CheckDiff struct {
	// FromLive counts the live rows Diff first folded into the shadow:
	// their events were not read (gone from the stream, or stored since).
	FromLive int64
	// LiveRows and RebuiltRows count the checks of each side.
	LiveRows, RebuiltRows int64
	// Changed, Missing (only in the rebuild) and Extra (only live) count
	// the checks that differ, by kind.
	Changed, Missing, Extra int64
	// LivePasses and RebuiltPasses count the exercises passed of each
	// side; PassesChanged (another course), PassesMissing and PassesExtra
	// those that differ. Which passed check a pass names, and its time,
	// is the first committed, which parallel writers may order otherwise
	// than the stream: not compared.
	LivePasses, RebuiltPasses                 int64
	PassesChanged, PassesMissing, PassesExtra int64
	// First holds the first checks that differ, by id.
	First []CheckDiffRow
}

// Differs reports whether the two sides differ at all.
func (d CheckDiff) Differs() bool {
	return d.Changed+d.Missing+d.Extra+d.PassesChanged+d.PassesMissing+d.PassesExtra > 0
}

// Diff first folds into the shadow the live rows whose events were not
// read (stream sequences below firstSeq or above endSeq), then compares
// shadow and live tables in one snapshot, and returns the counts of
// differences and the first limit checks that differ.
func (r *CheckRebuild) Diff(ctx context.Context, firstSeq, endSeq uint64, limit int) (CheckDiff, error) {
	var d CheckDiff
	err := pgx.BeginTxFunc(ctx, r.s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var passes int64
		if err := tx.QueryRow(ctx, foldLiveSQL, int64(firstSeq), int64(endSeq)).Scan(&d.FromLive, &passes); err != nil {
			return fmt.Errorf("fold live rows: %w", err)
		}
		const differs = `(l.id IS NULL OR r.id IS NULL OR (l.*) IS DISTINCT FROM (r.*))`
		const checks = `checks l FULL JOIN ` + checksShadow + ` r ON l.id = r.id`
		err := tx.QueryRow(ctx, `
			SELECT count(l.id), count(r.id),
				count(*) FILTER (WHERE l.id IS NOT NULL AND r.id IS NOT NULL AND `+differs+`),
				count(*) FILTER (WHERE l.id IS NULL), count(*) FILTER (WHERE r.id IS NULL)
			FROM `+checks).Scan(&d.LiveRows, &d.RebuiltRows, &d.Changed, &d.Missing, &d.Extra)
		if err != nil {
			return fmt.Errorf("count differences: %w", err)
		}
		err = tx.QueryRow(ctx, `
			SELECT count(l.student_id), count(r.student_id),
				count(*) FILTER (WHERE l.course_id <> r.course_id),
				count(*) FILTER (WHERE l.student_id IS NULL), count(*) FILTER (WHERE r.student_id IS NULL)
			FROM exercise_passes l FULL JOIN `+passesShadow+` r
				ON (l.student_id, l.exercise_id) = (r.student_id, r.exercise_id)`).
			Scan(&d.LivePasses, &d.RebuiltPasses, &d.PassesChanged, &d.PassesMissing, &d.PassesExtra)
		if err != nil {
			return fmt.Errorf("count differences of passes: %w", err)
		}
		rows, _ := tx.Query(ctx, `
			SELECT coalesce(l.id, r.id), coalesce(l.student_id, r.student_id), l.status, r.status
			FROM `+checks+` WHERE `+differs+` ORDER BY 1 LIMIT $1`, limit)
		d.First, err = pgx.CollectRows(rows, pgx.RowToStructByPos[CheckDiffRow])
		if err != nil {
			return fmt.Errorf("list differences: %w", err)
		}
		return nil
	})
	return d, wrap("diff checks", err)
}

// Swap makes the shadow tables the live ones, atomically: it locks checks
// and exercise_passes (ACCESS EXCLUSIVE, in the check writers' order:
// readers and writers wait, for at most lockTimeout to get the locks and
// then for the rest of the transaction), folds into the shadow the live
// rows stored after endSeq meanwhile, drops the live tables and renames
// the shadow ones, and their indexes, into their places. A writer whose
// statement waited on the lock then writes to the new tables. Swap
// returns how many rows it folded under the lock; on an error nothing
// changed and the shadow is kept.
func (r *CheckRebuild) Swap(ctx context.Context, endSeq uint64, lockTimeout time.Duration) (int64, error) {
	var n, passes int64
	err := pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`,
			fmt.Sprintf("%dms", lockTimeout.Milliseconds())); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE checks, exercise_passes IN ACCESS EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock checks: %w", err)
		}
		if err := tx.QueryRow(ctx, foldLiveSQL, 0, int64(endSeq)).Scan(&n, &passes); err != nil {
			return fmt.Errorf("fold live rows: %w", err)
		}
		if err := swapTable(ctx, tx, "checks", checksShadow); err != nil {
			return err
		}
		return swapTable(ctx, tx, "exercise_passes", passesShadow)
	})
	if err != nil {
		return 0, wrap("swap checks", err)
	}
	// Fresh planner statistics for the new tables; a failure only costs plans.
	_, _ = r.s.pool.Exec(ctx, `ANALYZE checks, exercise_passes`)
	return n, nil
}

// swapTable drops the table live and renames shadow in its place, in tx,
// and gives each index of shadow the name of the live index with the
// same definition, so that the schema after a swap is the migrations'.
func swapTable(ctx context.Context, tx pgx.Tx, live, shadow string) error {
	rows, _ := tx.Query(ctx, `
		SELECT s.indexname, l.indexname FROM pg_indexes l JOIN pg_indexes s
			ON s.schemaname = l.schemaname AND split_part(s.indexdef, ' USING ', 2) = split_part(l.indexdef, ' USING ', 2)
		WHERE l.schemaname = current_schema() AND l.tablename = $1 AND s.tablename = $2`, live, shadow)
	names, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Shadow, Live string }])
	if err != nil {
		return fmt.Errorf("index names of %s: %w", live, err)
	}
	stmts := []string{`DROP TABLE ` + live, `ALTER TABLE ` + shadow + ` RENAME TO ` + live}
	for _, n := range names {
		stmts = append(stmts, `ALTER INDEX `+pgx.Identifier{n.Shadow}.Sanitize()+` RENAME TO `+pgx.Identifier{n.Live}.Sanitize())
	}
	for _, sql := range stmts {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// Kind says how the row differs: "changed" (both have it, with other
// values), "missing" (only the rebuild has it) or "extra" (only the live
// table has it).
func (d CheckDiffRow) Kind() string {
	switch {
	case d.LiveStatus == nil:
		return "missing"
	case d.RebuiltStatus == nil:
		return "extra"
	}
	return "changed"
}
