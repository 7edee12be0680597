package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Exercise is a programming exercise of a course (API v1.1, "Code
// checks"): a statement, the languages a program may be written in, and
// the test cases a check runs it on, in order.
type Exercise struct {
	ID        uuid.UUID
	CourseID  uuid.UUID
	Title     string
	Statement string
	Languages []string
	Tests     []TestCase
}

// TestCase is one run of an exercise's program: its stdin and the stdout
// expected. A hidden test case is never shown to a student, nor its
// input or the program's output on it.
type TestCase struct {
	Stdin  string `json:"stdin"`
	Stdout string `json:"stdout"`
	Hidden bool   `json:"hidden,omitempty"`
}

// loadExercises adds the exercises to the courses LoadContent read, in
// display order.
func loadExercises(ctx context.Context, tx pgx.Tx, courses []Course, courseAt map[uuid.UUID]int) error {
	rows, _ := tx.Query(ctx, `SELECT id, course_id, title, statement, languages, tests FROM exercises ORDER BY position, id`)
	var e Exercise
	var langs, tests []byte
	_, err := pgx.ForEachRow(rows, []any{&e.ID, &e.CourseID, &e.Title, &e.Statement, &langs, &tests}, func() error {
		ex := Exercise{ID: e.ID, CourseID: e.CourseID, Title: e.Title, Statement: e.Statement}
		if err := json.Unmarshal(langs, &ex.Languages); err != nil {
			return fmt.Errorf("exercise %s languages: %w", e.ID, err)
		}
		if err := json.Unmarshal(tests, &ex.Tests); err != nil {
			return fmt.Errorf("exercise %s tests: %w", e.ID, err)
		}
		ci, ok := courseAt[e.CourseID]
		if !ok {
			return fmt.Errorf("exercise %s names unknown course %s", e.ID, e.CourseID)
		}
		courses[ci].Exercises = append(courses[ci].Exercises, ex)
		return nil
	})
	return wrap("load exercises", err)
}

// saveExercisesSQL upserts the exercises of SaveContent, leaving equal rows untouched.
const saveExercisesSQL = `INSERT INTO exercises (id, course_id, title, statement, languages, tests, position)
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]::jsonb[], $6::text[]::jsonb[], $7::int[])
	ON CONFLICT (id) DO UPDATE SET course_id = EXCLUDED.course_id, title = EXCLUDED.title, statement = EXCLUDED.statement,
	  languages = EXCLUDED.languages, tests = EXCLUDED.tests, position = EXCLUDED.position
	WHERE (exercises.course_id, exercises.title, exercises.statement, exercises.languages, exercises.tests, exercises.position)
	  IS DISTINCT FROM (EXCLUDED.course_id, EXCLUDED.title, EXCLUDED.statement, EXCLUDED.languages, EXCLUDED.tests, EXCLUDED.position)`

// exerciseArgs returns saveExercisesSQL's arguments for courses.
func exerciseArgs(courses []Course) ([]any, error) {
	var (
		id, course   = []uuid.UUID{}, []uuid.UUID{}
		title, stmt  = []string{}, []string{}
		langs, tests = []string{}, []string{}
		pos          = []int32{}
	)
	for _, c := range courses {
		for i, e := range c.Exercises {
			l, err := json.Marshal(nonNil(e.Languages))
			if err != nil {
				return nil, err
			}
			t, err := json.Marshal(nonNil(e.Tests))
			if err != nil {
				return nil, err
			}
			id, course, title, stmt = append(id, e.ID), append(course, c.ID), append(title, e.Title), append(stmt, e.Statement)
			langs, tests, pos = append(langs, string(l)), append(tests, string(t)), append(pos, int32(i))
		}
	}
	return []any{id, course, title, stmt, langs, tests, pos}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Exercise returns one exercise with its test cases, or ErrNotFound.
func (s *Store) Exercise(ctx context.Context, id uuid.UUID) (Exercise, error) {
	e := Exercise{ID: id}
	var langs, tests []byte
	err := s.pool.QueryRow(ctx, `SELECT course_id, title, statement, languages, tests FROM exercises WHERE id = $1`, id).
		Scan(scanID(&e.CourseID), &e.Title, &e.Statement, &langs, &tests)
	if err != nil {
		return e, wrap("get exercise", err)
	}
	if err := json.Unmarshal(langs, &e.Languages); err != nil {
		return e, fmt.Errorf("exercise %s languages: %w", id, err)
	}
	if err := json.Unmarshal(tests, &e.Tests); err != nil {
		return e, fmt.Errorf("exercise %s tests: %w", id, err)
	}
	return e, nil
}
