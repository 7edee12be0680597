package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// StudentSnapshot is what the read model's value of one student is built
// from when the model cannot fold an event exactly (a student it does not
// hold, an attempt older than its page): one consistent snapshot.
type StudentSnapshot struct {
	Progress []Progress
	// Total counts the student's attempts, recorded and failed.
	Total int
	// Page is the newest attempts, in the attempts list's order.
	Page []Attempt
	// Above lists the stream sequences of the student's attempts above
	// the floor the snapshot was asked for.
	Above []uint64
	// Passes are the exercises the student passed, in exercise id order.
	Passes []ExercisePass
}

// ExercisePass is an exercise a student passed, in its course.
type ExercisePass struct {
	CourseID, ExerciseID uuid.UUID
}

// GetStudentSnapshot returns a student's progress, attempt count, newest
// page attempts, the stream sequences of their attempts above floor and
// the exercises they passed,
// all from one repeatable-read snapshot, or the error.
func (s *Store) GetStudentSnapshot(ctx context.Context, student uuid.UUID, floor uint64, page int) (StudentSnapshot, error) {
	var snap StudentSnapshot
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT quiz_id, course_id, attempts, best_score FROM progress WHERE student_id = $1`, student)
		var err error
		snap.Progress, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Progress, error) {
			var p Progress
			err := row.Scan(scanID(&p.QuizID), scanID(&p.CourseID), &p.Attempts, &p.BestScore)
			return p, err
		})
		if err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE student_id = $1
			ORDER BY submitted_at DESC, id DESC LIMIT $2`, student, page)
		if snap.Page, err = pgx.CollectRows(rows, scanAttempt); err != nil {
			return err
		}
		var above []int64
		if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(array_agg(stream_seq) FILTER (WHERE stream_seq > $2), '{}')
			FROM attempts WHERE student_id = $1`, student, int64(floor)).Scan(&snap.Total, &above); err != nil {
			return err
		}
		for _, seq := range above {
			snap.Above = append(snap.Above, uint64(seq))
		}
		rows, _ = tx.Query(ctx, `SELECT course_id, exercise_id FROM exercise_passes WHERE student_id = $1 ORDER BY exercise_id`, student)
		snap.Passes, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ExercisePass, error) {
			var p ExercisePass
			err := row.Scan(scanID(&p.CourseID), scanID(&p.ExerciseID))
			return p, err
		})
		return err
	})
	return snap, wrap("student snapshot", err)
}

// StudentsWithAttempts calls fn with every student who has an attempt or
// a passed exercise,
// in id order, or returns the first error: what a rebuild of the read
// model walks.
func (s *Store) StudentsWithAttempts(ctx context.Context, fn func(uuid.UUID) error) error {
	rows, _ := s.pool.Query(ctx, `SELECT DISTINCT student_id FROM progress UNION SELECT DISTINCT student_id FROM attempts
		UNION SELECT DISTINCT student_id FROM exercise_passes ORDER BY 1`)
	ids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (uuid.UUID, error) {
		var id uuid.UUID
		err := row.Scan(scanID(&id))
		return id, err
	})
	if err != nil {
		return wrap("students with attempts", err)
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// CheckSnapshot is a student's newest checks and how many they have, in
// one statement: what the read model's checks of a student are built from.
type CheckSnapshot struct {
	Total int
	// Page is the newest checks, in the checks list's order.
	Page []Check
}

// GetCheckSnapshot returns a student's check count and newest page
// checks, or the error.
func (s *Store) GetCheckSnapshot(ctx context.Context, student uuid.UUID, page int) (CheckSnapshot, error) {
	var snap CheckSnapshot
	// The window's count is taken over every row of the student, before
	// the limit.
	rows, _ := s.pool.Query(ctx, `SELECT `+checkColumns+`, count(*) OVER () FROM checks WHERE student_id = $1
		ORDER BY submitted_at DESC, id DESC LIMIT $2`, student, page)
	var err error
	snap.Page, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Check, error) {
		return scanCheckWith(row, &snap.Total)
	})
	return snap, wrap("check snapshot", err)
}

// StudentsWithSessionsOrChecks calls fn with every student who has an
// exam session or a code check, in id order, or returns the first error:
// what a rebuild of the read model's sessions and checks walks.
func (s *Store) StudentsWithSessionsOrChecks(ctx context.Context, fn func(uuid.UUID) error) error {
	rows, _ := s.pool.Query(ctx, `SELECT DISTINCT student_id FROM exam_sessions UNION SELECT DISTINCT student_id FROM checks ORDER BY 1`)
	ids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (uuid.UUID, error) {
		var id uuid.UUID
		err := row.Scan(scanID(&id))
		return id, err
	})
	if err != nil {
		return wrap("students with sessions or checks", err)
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}
