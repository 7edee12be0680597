package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Attempt statuses stored in the database.
const (
	StatusRecorded = "recorded"
	StatusFailed   = "failed"
)

// Attempt is a stored quiz attempt.
type Attempt struct {
	ID             uuid.UUID
	StudentID      uuid.UUID
	QuizID         uuid.UUID
	CourseID       uuid.UUID
	IdempotencyKey string // empty when the client sent none
	Answers        []byte // JSON, as submitted
	AnswersHash    []byte
	Score          int
	MaxScore       int
	Status         string
	SubmittedAt    time.Time
	StreamSeq      uint64
}

// InsertResult says what InsertAttempts changed.
type InsertResult struct {
	// Inserted counts new attempt rows (and failed tombstones that became
	// recorded); the rest of the batch was stored before.
	Inserted int64
	// ProgressRows counts the progress rows created or updated.
	ProgressRows int64
}

var stagingColumns = []string{"id", "student_id", "quiz_id", "course_id", "idempotency_key",
	"answers", "answers_hash", "score", "max_score", "status", "submitted_at", "stream_seq"}

// InsertAttempts stores a batch of attempts (status recorded, or failed
// for a tombstone) in one transaction: it copies
// them into a per-connection staging table, inserts those whose id is new,
// and folds exactly the inserted ones into the progress projection (so a
// batch delivered twice changes nothing the second time). It returns what
// it changed, or an error after which nothing was written.
func (s *Store) InsertAttempts(ctx context.Context, batch []Attempt) (InsertResult, error) {
	return s.insertAttempts(ctx, batch, true)
}

// WithStatementTimeout returns a Store on the same pool whose attempt
// writes (InsertAttempts, TryInsertAttempts) run with PostgreSQL's
// statement_timeout set to d for their transaction: a statement stuck on a
// lock or a slow disk is cancelled by the server (SQLSTATE 57014, a
// transient error) rather than holding its batch, and the ack floor, for
// ever. d <= 0 leaves the server's setting. Close the original, not it.
func (s *Store) WithStatementTimeout(d time.Duration) *Store {
	c := *s
	c.stmtTimeout = max(d, 0)
	return &c
}

// insertAttempts is InsertAttempts, committed or (for TryInsertAttempts)
// rolled back.
func (s *Store) insertAttempts(ctx context.Context, batch []Attempt, commit bool) (InsertResult, error) {
	var res InsertResult
	if len(batch) == 0 {
		return res, nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Created once per connection: IF NOT EXISTS on a present table is a
		// catalog lookup, not catalog churn. ON COMMIT DELETE ROWS empties it.
		// The statement timeout goes in the same round trip (no arguments:
		// the simple protocol, which takes several statements).
		setTimeout := ""
		if s.stmtTimeout > 0 {
			setTimeout = fmt.Sprintf("SET LOCAL statement_timeout = %d;\n", max(s.stmtTimeout.Milliseconds(), 1))
		}
		if _, err := tx.Exec(ctx, setTimeout+`CREATE TEMP TABLE IF NOT EXISTS attempts_staging (
				id uuid, student_id uuid, quiz_id uuid, course_id uuid, idempotency_key text,
				answers jsonb, answers_hash bytea, score integer, max_score integer,
				status text, submitted_at timestamptz, stream_seq bigint
			) ON COMMIT DELETE ROWS`); err != nil {
			return fmt.Errorf("create staging: %w", err)
		}
		rows := make([][]any, len(batch))
		for i, a := range batch {
			var key *string
			if a.IdempotencyKey != "" {
				key = &a.IdempotencyKey
			}
			status := a.Status
			if status == "" {
				status = StatusRecorded
			}
			rows[i] = []any{a.ID, a.StudentID, a.QuizID, a.CourseID, key, string(a.Answers),
				a.AnswersHash, a.Score, a.MaxScore, status, a.SubmittedAt, int64(a.StreamSeq)}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"attempts_staging"}, stagingColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy to staging: %w", err)
		}
		// Rows are inserted in id order and progress rows upserted in
		// (student, quiz) order, so that concurrent workers never deadlock.
		err := tx.QueryRow(ctx, insertAttemptsSQL).
			Scan(&res.Inserted, &res.ProgressRows)
		if err == nil && !commit {
			return errRollback
		}
		return err
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return res, wrap("insert attempts", err)
}

// Cursor is a position in a student's attempts, newest first.
type Cursor struct {
	SubmittedAt time.Time
	ID          uuid.UUID
}

// ListAttemptsParams selects a page of a student's attempts.
type ListAttemptsParams struct {
	StudentID uuid.UUID
	QuizID    uuid.UUID // uuid.Nil for every quiz
	After     *Cursor   // nil for the first page
	Limit     int
}

const attemptColumns = `id, student_id, quiz_id, course_id, coalesce(idempotency_key, ''), answers,
	answers_hash, score, max_score, status, submitted_at, stream_seq`

func scanAttempt(row pgx.CollectableRow) (Attempt, error) {
	var a Attempt
	var seq int64
	err := row.Scan(scanID(&a.ID), scanID(&a.StudentID), scanID(&a.QuizID), scanID(&a.CourseID), &a.IdempotencyKey, &a.Answers,
		&a.AnswersHash, &a.Score, &a.MaxScore, &a.Status, &a.SubmittedAt, &seq)
	a.StreamSeq = uint64(seq)
	return a, err
}

// pageSQL is the query of one page of a student's rows of table, newest
// first (submitted_at, then id, descending), filtered on column = filter
// unless filter is the nil UUID, after the cursor when there is one.
func pageSQL(columns, table string, student uuid.UUID, column string, filter uuid.UUID, after *Cursor, limit int) (string, []any) {
	sql := `SELECT ` + columns + ` FROM ` + table + ` WHERE student_id = $1`
	args := []any{student}
	if filter != uuid.Nil {
		args = append(args, filter)
		sql += fmt.Sprintf(` AND %s = $%d`, column, len(args))
	}
	if after != nil {
		args = append(args, after.SubmittedAt, after.ID)
		sql += fmt.Sprintf(` AND (submitted_at, id) < ($%d, $%d)`, len(args)-1, len(args))
	}
	args = append(args, limit)
	sql += fmt.Sprintf(` ORDER BY submitted_at DESC, id DESC LIMIT $%d`, len(args))
	return sql, args
}

// ListAttempts returns one page of a student's attempts ordered by
// submitted_at, then id, both descending; one index scan serves it.
func (s *Store) ListAttempts(ctx context.Context, p ListAttemptsParams) ([]Attempt, error) {
	sql, args := pageSQL(attemptColumns, "attempts", p.StudentID, "quiz_id", p.QuizID, p.After, p.Limit)
	rows, _ := s.pool.Query(ctx, sql, args...)
	out, err := pgx.CollectRows(rows, scanAttempt)
	return out, wrap("list attempts", err)
}

// GetAttempt returns one of a student's attempts, or ErrNotFound when it is
// unknown or another student's.
func (s *Store) GetAttempt(ctx context.Context, studentID, id uuid.UUID) (Attempt, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE id = $1 AND student_id = $2`, id, studentID)
	a, err := pgx.CollectExactlyOneRow(rows, scanAttempt)
	return a, wrap("get attempt", err)
}

// AttemptStatuses returns the status (StatusRecorded or StatusFailed) of
// each of ids that is stored; an id not stored is absent. The read
// model's projection asks it once a batch, for what the writers decided.
func (s *Store) AttemptStatuses(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, status FROM attempts WHERE id = ANY($1)`, ids)
	out := make(map[uuid.UUID]string, len(ids))
	var id uuid.UUID
	var status string
	_, err := pgx.ForEachRow(rows, []any{scanID(&id), &status}, func() error {
		out[id] = status
		return nil
	})
	return out, wrap("attempt statuses", err)
}

// Progress is a student's recorded attempts at one quiz, or (QuizID
// uuid.Nil) the exercises passed in one course.
type Progress struct {
	QuizID    uuid.UUID
	CourseID  uuid.UUID
	Attempts  int
	BestScore int
	// ExercisesPassed counts the course's exercises with a passed check,
	// on the course's row of exercises (QuizID uuid.Nil).
	ExercisesPassed int
}

// GetProgress returns a student's progress rows, one per quiz attempted
// and one per course with an exercise passed, in one statement.
func (s *Store) GetProgress(ctx context.Context, studentID uuid.UUID) ([]Progress, error) {
	rows, _ := s.pool.Query(ctx,
		`SELECT quiz_id, course_id, attempts, best_score, 0 FROM progress WHERE student_id = $1
		 UNION ALL
		 SELECT '00000000-0000-0000-0000-000000000000'::uuid, course_id, 0, 0, count(*)::int
		 FROM exercise_passes WHERE student_id = $1 GROUP BY course_id`, studentID)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Progress, error) {
		var p Progress
		err := row.Scan(scanID(&p.QuizID), scanID(&p.CourseID), &p.Attempts, &p.BestScore, &p.ExercisesPassed)
		return p, err
	})
	return out, wrap("get progress", err)
}

// insertAttemptsSQL moves the staged batch into attempts and folds the
// rows it inserted (recorded ones) into the progress projection, with the
// projection's one statement (foldProgressSQL) that replay's rebuild runs
// too.
var insertAttemptsSQL = `
	WITH ins AS (
		INSERT INTO attempts (id, student_id, quiz_id, course_id, idempotency_key, answers,
			answers_hash, score, max_score, status, submitted_at, stream_seq)
		SELECT DISTINCT ON (id) id, student_id, quiz_id, course_id, idempotency_key, answers,
			answers_hash, score, max_score, status, submitted_at, stream_seq
		FROM attempts_staging ORDER BY id, status = 'recorded' DESC, stream_seq
		-- A stored attempt is never changed, except that a failed
		-- tombstone becomes recorded when its redriven event is stored.
		ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, answers = EXCLUDED.answers,
			score = EXCLUDED.score, max_score = EXCLUDED.max_score,
			stream_seq = EXCLUDED.stream_seq, recorded_at = now()
		WHERE attempts.status = 'failed' AND EXCLUDED.status = 'recorded'
		RETURNING student_id, quiz_id, course_id, score, status
	), prog AS (` + foldProgressSQL("progress", "ins WHERE status = 'recorded'") + `)
	SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM prog)`
