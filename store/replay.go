package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errRollback ends a transaction that must leave nothing behind.
var errRollback = errors.New("store: rolled back on purpose")

// TryInsertAttempts runs InsertAttempts in a transaction that it rolls
// back: the result says what InsertAttempts would have changed, and an
// error is what PostgreSQL would have refused; nothing is written. It
// takes the same short row locks as InsertAttempts while it runs.
func (s *Store) TryInsertAttempts(ctx context.Context, batch []Attempt) (InsertResult, error) {
	return s.insertAttempts(ctx, batch, false)
}

// The tables of a progress rebuild. The shadow has the shape of progress
// (LIKE ... INCLUDING ALL), so its primary-key index is named
// progress_rebuild_pkey until the swap renames it.
const (
	shadowTable  = "progress_rebuild"
	countedTable = "progress_rebuild_counted"
)

// rebuildLockKey is the advisory lock that keeps two rebuilds of
// progress apart.
const rebuildLockKey = 7239002

// ErrRebuildRunning means another rebuild of the projection holds its
// rebuild lock.
var ErrRebuildRunning = errors.New("store: another rebuild of this projection is running")

// takeRebuildLock takes the advisory lock key on a connection of its own,
// which holds it until release; ErrRebuildRunning when another holds it.
func (s *Store) takeRebuildLock(ctx context.Context, key int64) (*pgxpool.Conn, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock: %w", err)
	}
	if !locked {
		conn.Release()
		return nil, ErrRebuildRunning
	}
	return conn, nil
}

// releaseRebuildLock releases the lock takeRebuildLock took on conn, and conn.
func releaseRebuildLock(conn *pgxpool.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
		// The connection is gone, and the lock with it.
		conn.Conn().Close(ctx)
	}
	conn.Release()
}

// ProgressRebuild rebuilds the progress projection into a shadow table,
// progress_rebuild, next to the live one. The shadow counts an attempt only
// if it is stored as recorded in attempts, and each attempt id once (the
// ids counted are kept in progress_rebuild_counted), so that it converges
// on the invariant the workers keep: progress is the aggregate of the
// recorded attempts. Close it when done.
type ProgressRebuild struct {
	shadows
}

// StartProgressRebuild takes the rebuild lock and creates empty shadow
// tables, replacing any an earlier rebuild left behind. It returns
// ErrRebuildRunning when another rebuild holds the lock.
func (s *Store) StartProgressRebuild(ctx context.Context) (*ProgressRebuild, error) {
	sh, err := s.startShadows(ctx, "progress", rebuildLockKey, shadowTable+`, `+countedTable,
		`CREATE TABLE `+shadowTable+` (LIKE progress INCLUDING ALL)`,
		// Unlogged: it only lives as long as the rebuild.
		`CREATE UNLOGGED TABLE `+countedTable+` (id uuid PRIMARY KEY)`)
	if err != nil {
		return nil, err
	}
	return &ProgressRebuild{sh}, nil
}

// shadows is what every rebuild of a projection in PostgreSQL holds: the
// advisory lock that keeps two rebuilds of it apart, on a connection of
// its own, and the shadow tables it builds beside the live ones.
type shadows struct {
	s      *Store
	what   string
	key    int64
	tables string        // the shadow tables, "a, b"
	lock   *pgxpool.Conn // holds the advisory lock for the whole rebuild
}

// startShadows takes the advisory lock key of the rebuild of what, then
// drops tables (left by an earlier rebuild) and runs create in one
// transaction. It returns ErrRebuildRunning when another rebuild holds the
// lock, or the error, the lock released.
func (s *Store) startShadows(ctx context.Context, what string, key int64, tables string, create ...string) (shadows, error) {
	conn, err := s.takeRebuildLock(ctx, key)
	if errors.Is(err, ErrRebuildRunning) {
		return shadows{}, err
	}
	if err != nil {
		return shadows{}, wrap("start "+what+" rebuild", err)
	}
	sh := shadows{s: s, what: what, key: key, tables: tables, lock: conn}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, sql := range append([]string{`DROP TABLE IF EXISTS ` + tables}, create...) {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		sh.unlock()
		return shadows{}, wrap("start "+what+" rebuild: create shadow", err)
	}
	return sh, nil
}

// Close drops the shadow tables (or what is left of them) unless keep is
// set, and releases the rebuild lock and its connection (the pool cannot
// close before). Calls after the first do nothing.
func (r *shadows) Close(ctx context.Context, keep bool) error {
	if r.lock == nil {
		return nil
	}
	defer r.unlock()
	if keep {
		return nil
	}
	_, err := r.s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+r.tables)
	return wrap("drop "+r.what+" rebuild tables", err)
}

func (r *shadows) unlock() {
	releaseRebuildLock(r.lock, r.key)
	r.lock = nil
}

// ProgressEvent is what the shadow needs of an AttemptSubmitted event.
type ProgressEvent struct {
	AttemptID, StudentID, QuizID, CourseID uuid.UUID
	Score                                  int
}

// ProgressEvent returns what progress counts of a, the same columns
// InsertAttempts folds into progress, so that an event becomes a row once
// (worker.Row) and a row becomes progress once.
func (a Attempt) ProgressEvent() ProgressEvent {
	return ProgressEvent{AttemptID: a.ID, StudentID: a.StudentID, QuizID: a.QuizID, CourseID: a.CourseID, Score: a.Score}
}

// Fold counts events into the shadow: those whose attempt is stored as
// recorded and not counted yet, with the score the event carries. It
// returns how many it counted; an error means it counted none.
func (r *ProgressRebuild) Fold(ctx context.Context, evs []ProgressEvent) (int64, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	ids := make([]uuid.UUID, len(evs))
	students := make([]uuid.UUID, len(evs))
	quizzes := make([]uuid.UUID, len(evs))
	courses := make([]uuid.UUID, len(evs))
	scores := make([]int32, len(evs))
	for i, e := range evs {
		score, err := int32Of("score", int64(e.Score))
		if err != nil {
			return 0, fmt.Errorf("fold events into progress rebuild: %w", err)
		}
		ids[i], students[i], quizzes[i], courses[i], scores[i] = e.AttemptID, e.StudentID, e.QuizID, e.CourseID, score
	}
	var n int64
	err := r.s.pool.QueryRow(ctx, `
		WITH ev AS (
			SELECT DISTINCT ON (id) id, student_id, quiz_id, course_id, score
			FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[])
				AS e(id, student_id, quiz_id, course_id, score)
			ORDER BY id
		), counted AS (
			INSERT INTO `+countedTable+` (id)
			SELECT ev.id FROM ev JOIN attempts a ON a.id = ev.id AND a.status = 'recorded'
			ORDER BY ev.id
			ON CONFLICT (id) DO NOTHING
			RETURNING id
		), prog AS (`+foldProgressSQL(shadowTable, "ev JOIN counted USING (id)")+`)
		SELECT count(*) FROM counted`, ids, students, quizzes, courses, scores).Scan(&n)
	return n, wrap("fold events into progress rebuild", err)
}

// foldProgressSQL returns the statement that adds the rows of from (a
// relation of attempts to count: student_id, quiz_id, course_id, score)
// to a progress table, as counts and maxima, so that the order attempts
// are counted in changes nothing; rows are upserted in (student, quiz)
// order so that concurrent writers never deadlock.
func foldProgressSQL(table, from string) string {
	return `
		INSERT INTO ` + table + ` AS p (student_id, quiz_id, course_id, attempts, best_score)
		SELECT student_id, quiz_id, min(course_id::text)::uuid, count(*), max(score)
		FROM ` + from + `
		GROUP BY student_id, quiz_id
		ORDER BY student_id, quiz_id
		ON CONFLICT (student_id, quiz_id) DO UPDATE
		SET attempts = p.attempts + EXCLUDED.attempts,
		    best_score = greatest(p.best_score, EXCLUDED.best_score)
		RETURNING 1`
}

// foldRecordedSQL counts into the shadow every recorded attempt it has not
// counted yet, from the attempts table itself: attempts whose event was
// outside the range read, or that workers stored after the event was read.
var foldRecordedSQL = `
	WITH counted AS (
		INSERT INTO ` + countedTable + ` (id)
		SELECT a.id FROM attempts a
		WHERE a.status = 'recorded'
		  AND NOT EXISTS (SELECT 1 FROM ` + countedTable + ` c WHERE c.id = a.id)
		ORDER BY a.id
		ON CONFLICT (id) DO NOTHING
		RETURNING id
	), prog AS (` + foldProgressSQL(shadowTable, "attempts JOIN counted USING (id)") + `)
	SELECT count(*) FROM counted`

// ProgressDiffRow is one (student, quiz) where the live and rebuilt
// progress differ; a side without the row has nil counts.
type ProgressDiffRow struct {
	StudentID, QuizID             uuid.UUID
	LiveAttempts, LiveBest        *int
	RebuiltAttempts, RebuiltBest  *int
	LiveCourseID, RebuiltCourseID *uuid.UUID
}

// Kind says how the row differs: "changed" (both have it, with other
// values), "missing" (only the rebuild has it) or "extra" (only the live
// table has it).
func (d ProgressDiffRow) Kind() string {
	switch {
	case d.LiveAttempts == nil:
		return "missing"
	case d.RebuiltAttempts == nil:
		return "extra"
	}
	return "changed"
}

// ProgressDiff compares the live progress table with the rebuilt one.
type ProgressDiff struct {
	// FoldedFromTable counts the recorded attempts Diff first counted from
	// the attempts table: those whose event was outside the range read, or
	// that workers stored after their event was read.
	FoldedFromTable int64
	// LiveRows and RebuiltRows count the rows of each table.
	LiveRows, RebuiltRows int64
	// Changed, Missing and Extra count the rows that differ, by kind.
	Changed, Missing, Extra int64
	// First holds the first rows that differ, by (student, quiz).
	First []ProgressDiffRow
}

// Differs reports whether the two tables differ at all.
func (d ProgressDiff) Differs() bool { return d.Changed+d.Missing+d.Extra > 0 }

// Diff first counts into the shadow the recorded attempts it lacks, then
// compares it with the live table, both in one snapshot (in which the live
// table and attempts agree, since workers change both in one transaction),
// and returns the counts of differences and the first limit rows.
func (r *ProgressRebuild) Diff(ctx context.Context, limit int) (ProgressDiff, error) {
	var d ProgressDiff
	err := pgx.BeginTxFunc(ctx, r.s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, foldRecordedSQL).Scan(&d.FoldedFromTable); err != nil {
			return fmt.Errorf("fold recorded attempts: %w", err)
		}
		const differs = `(l.student_id IS NULL OR r.student_id IS NULL OR
			(l.course_id, l.attempts, l.best_score) IS DISTINCT FROM (r.course_id, r.attempts, r.best_score))`
		err := tx.QueryRow(ctx, `
			SELECT count(l.student_id), count(r.student_id),
				count(*) FILTER (WHERE l.student_id IS NOT NULL AND r.student_id IS NOT NULL AND `+differs+`),
				count(*) FILTER (WHERE l.student_id IS NULL),
				count(*) FILTER (WHERE r.student_id IS NULL)
			FROM progress l FULL JOIN `+shadowTable+` r ON (l.student_id, l.quiz_id) = (r.student_id, r.quiz_id)`).
			Scan(&d.LiveRows, &d.RebuiltRows, &d.Changed, &d.Missing, &d.Extra)
		if err != nil {
			return fmt.Errorf("count differences: %w", err)
		}
		rows, _ := tx.Query(ctx, `
			SELECT coalesce(l.student_id, r.student_id), coalesce(l.quiz_id, r.quiz_id),
				l.attempts, l.best_score, r.attempts, r.best_score, l.course_id, r.course_id
			FROM progress l FULL JOIN `+shadowTable+` r ON (l.student_id, l.quiz_id) = (r.student_id, r.quiz_id)
			WHERE `+differs+`
			ORDER BY 1, 2 LIMIT $1`, limit)
		d.First, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ProgressDiffRow])
		if err != nil {
			return fmt.Errorf("list differences: %w", err)
		}
		return nil
	})
	return d, wrap("diff progress", err)
}

// Swap makes the shadow the live progress table, atomically: it locks
// progress (ACCESS EXCLUSIVE: readers and workers wait, for at most
// lockTimeout to get the lock and then for the rest of the transaction),
// counts into the shadow the recorded attempts workers committed
// meanwhile, renames progress to progress_old and the shadow to progress,
// drops the old table and the helper table, and renames the shadow's
// primary-key index to progress_pkey. A worker whose statement waited on
// the lock then writes to the new table: PostgreSQL resolves the name
// again once it gets the lock. Swap returns how many attempts it counted
// under the lock; on an error nothing changed and the shadow is kept.
func (r *ProgressRebuild) Swap(ctx context.Context, lockTimeout time.Duration) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`,
			fmt.Sprintf("%dms", lockTimeout.Milliseconds())); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE progress IN ACCESS EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock progress: %w", err)
		}
		if err := tx.QueryRow(ctx, foldRecordedSQL).Scan(&n); err != nil {
			return fmt.Errorf("fold recorded attempts: %w", err)
		}
		for _, sql := range []string{
			`ALTER TABLE progress RENAME TO progress_old`,
			`ALTER TABLE ` + shadowTable + ` RENAME TO progress`,
			`DROP TABLE progress_old`,
			`DROP TABLE ` + countedTable,
			`ALTER INDEX ` + shadowTable + `_pkey RENAME TO progress_pkey`,
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrap("swap progress", err)
	}
	// Fresh planner statistics for the new table; a failure only costs plans.
	_, _ = r.s.pool.Exec(ctx, `ANALYZE progress`)
	return n, nil
}
