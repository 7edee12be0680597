package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Check statuses as the checks table and the HTTP contract name them.
const (
	CheckQueued  = "queued"
	CheckRunning = "running"
	CheckPassed  = "passed"
	CheckFailed  = "failed"
	CheckError   = "error"
)

// Check is one row of the checks projection (the CHECKS stream's events
// folded): a check's request, and once a checker took it its start, and
// once finished its verdict.
type Check struct {
	ID, StudentID, ExerciseID, CourseID  uuid.UUID
	Language, SourceHash, IdempotencyKey string
	Status                               string
	SubmittedAt                          time.Time
	StartedAt, FinishedAt                *time.Time
	Tests                                []CheckTest
	Output                               string
	StreamSeq                            uint64
}

// CheckTest is one test case's outcome as a student sees it.
type CheckTest struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	TimeMS int64  `json:"time_ms"`
}

// checkBatchSQL is a batch of check rows passed as arrays ($1 to $14),
// one row per check: its most advanced.
var checkBatchSQL = `
	SELECT DISTINCT ON (id) * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::text[]::jsonb[],
		$13::text[], $14::bigint[])
		AS b(` + checkRowColumns + `)
	ORDER BY id, ` + checkRank("status") + ` DESC`

// checkRowColumns are the columns of a checks table, in the order
// foldChecksSQL's rows give them.
const checkRowColumns = `id, student_id, exercise_id, course_id, language, source_hash, idempotency_key, status,
	submitted_at, started_at, finished_at, tests, output, stream_seq`

// foldChecksSQL returns the statement that folds rows (a relation of
// check rows, checkRowColumns, one per check) into a checks table and its
// passes table: each row keeps its most advanced status (queued, running,
// then a final one, which never changes again), whatever order the events
// come in; a check passed adds its exercise to the student's passes once.
// Rows are written in id order, passes in (student, exercise) order, so
// that concurrent writers never deadlock. The workers fold into the live
// tables, a rebuild into its shadow: the one statement of the projection.
func foldChecksSQL(checks, passes, rows string) string {
	return `
	WITH batch AS (` + rows + `
	), ins AS (
		INSERT INTO ` + checks + ` AS c (` + checkRowColumns + `)
		SELECT * FROM batch ORDER BY id
		ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
			started_at = coalesce(c.started_at, EXCLUDED.started_at), finished_at = EXCLUDED.finished_at,
			tests = EXCLUDED.tests, output = EXCLUDED.output, stream_seq = EXCLUDED.stream_seq
		WHERE ` + checkRank("c.status") + ` < ` + checkRank("EXCLUDED.status") + `
		RETURNING id, student_id, exercise_id, course_id, status, finished_at
	), passes AS (
		INSERT INTO ` + passes + ` (student_id, exercise_id, course_id, check_id, passed_at)
		SELECT student_id, exercise_id, course_id, id, finished_at FROM ins WHERE status = 'passed'
		ORDER BY student_id, exercise_id
		ON CONFLICT (student_id, exercise_id) DO NOTHING
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM passes)`
}

var writeChecksSQL = foldChecksSQL("checks", "exercise_passes", checkBatchSQL)

// checkRank orders statuses: queued, running, then the final ones.
func checkRank(col string) string {
	return `(CASE ` + col + ` WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END)`
}

// CheckWriteResult is what WriteChecks changed.
type CheckWriteResult struct {
	// Changed counts the rows inserted or advanced; Passes the exercises
	// newly passed.
	Changed, Passes int64
}

// WriteChecks folds rows into the checks projection in one transaction.
func (s *Store) WriteChecks(ctx context.Context, rows []Check) (CheckWriteResult, error) {
	var res CheckWriteResult
	if len(rows) == 0 {
		return res, nil
	}
	args, err := checkArrays(rows)
	if err != nil {
		return res, fmt.Errorf("write checks: %w", err)
	}
	err = s.pool.QueryRow(ctx, writeChecksSQL, args...).Scan(&res.Changed, &res.Passes)
	return res, wrap("write checks", err)
}

// checkArrays returns rows as checkBatchSQL's 14 arrays.
func checkArrays(rows []Check) ([]any, error) {
	n := len(rows)
	var (
		id, student, exercise, course = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		lang, hash, status, output    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		key                           = make([]*string, n)
		submitted                     = make([]time.Time, n)
		started, finished             = make([]*time.Time, n), make([]*time.Time, n)
		tests                         = make([]string, n)
		seq                           = make([]int64, n)
	)
	for i, r := range rows {
		t, err := json.Marshal(nonNil(r.Tests))
		if err != nil {
			return nil, err
		}
		id[i], student[i], exercise[i], course[i] = r.ID, r.StudentID, r.ExerciseID, r.CourseID
		lang[i], hash[i], status[i], output[i] = r.Language, r.SourceHash, r.Status, r.Output
		if r.IdempotencyKey != "" {
			key[i] = &r.IdempotencyKey
		}
		submitted[i], started[i], finished[i], tests[i], seq[i] = r.SubmittedAt, r.StartedAt, r.FinishedAt, string(t), int64(r.StreamSeq)
	}
	return []any{id, student, exercise, course, lang, hash, key, status, submitted, started, finished, tests, output, seq}, nil
}

const checkColumns = `id, student_id, exercise_id, course_id, language, source_hash, coalesce(idempotency_key, ''),
	status, submitted_at, started_at, finished_at, tests, output, stream_seq`

func scanCheck(row pgx.CollectableRow) (Check, error) { return scanCheckWith(row) }

// scanCheckWith scans a row of checkColumns followed by extra columns.
func scanCheckWith(row pgx.CollectableRow, extra ...any) (Check, error) {
	var c Check
	var seq int64
	var tests []byte
	err := row.Scan(append([]any{scanID(&c.ID), scanID(&c.StudentID), scanID(&c.ExerciseID), scanID(&c.CourseID), &c.Language,
		&c.SourceHash, &c.IdempotencyKey, &c.Status, &c.SubmittedAt, &c.StartedAt, &c.FinishedAt, &tests, &c.Output, &seq},
		extra...)...)
	if err != nil {
		return c, err
	}
	c.StreamSeq = uint64(seq)
	return c, json.Unmarshal(tests, &c.Tests)
}

// GetCheck returns one of a student's checks, or ErrNotFound when it is
// unknown or another student's.
func (s *Store) GetCheck(ctx context.Context, studentID, id uuid.UUID) (Check, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+checkColumns+` FROM checks WHERE id = $1 AND student_id = $2`, id, studentID)
	c, err := pgx.CollectExactlyOneRow(rows, scanCheck)
	return c, wrap("get check", err)
}

// ListChecksParams selects a page of a student's checks.
type ListChecksParams struct {
	StudentID  uuid.UUID
	ExerciseID uuid.UUID // uuid.Nil for every exercise
	After      *Cursor   // nil for the first page
	Limit      int
}

// ListChecks returns one page of a student's checks ordered by
// submitted_at, then id, both descending; one index scan serves it.
func (s *Store) ListChecks(ctx context.Context, p ListChecksParams) ([]Check, error) {
	sql, args := pageSQL(checkColumns, "checks", p.StudentID, "exercise_id", p.ExerciseID, p.After, p.Limit)
	rows, _ := s.pool.Query(ctx, sql, args...)
	out, err := pgx.CollectRows(rows, scanCheck)
	return out, wrap("list checks", err)
}
