package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Course is a course with its quizzes and exercises, in display order.
type Course struct {
	ID          uuid.UUID
	Slug        string
	Title       string
	Description string
	Quizzes     []Quiz
	// Exercises are the course's programming exercises (store/exercises.go).
	Exercises []Exercise
}

// Quiz is a quiz with its questions, in display order.
type Quiz struct {
	ID        uuid.UUID
	CourseID  uuid.UUID
	Title     string
	Questions []Question
	// TimeLimit, when not 0, makes the quiz a timed exam (API v1.1), taken
	// through sessions; it is stored in whole seconds. The other exam
	// settings apply to a timed quiz only.
	TimeLimit time.Duration
	// OpensAt and ClosesAt bound when sessions may start; zero for none.
	OpensAt, ClosesAt time.Time
	// MaxSessions is how many sessions one student may start; 0 for no limit.
	MaxSessions int
	// Grace, when set, replaces the API's default grace for this quiz;
	// stored in whole seconds.
	Grace *time.Duration
}

// Question is a question with its choices, in display order.
type Question struct {
	ID      uuid.UUID
	Prompt  string
	Choices []Choice
}

// Choice is one answer to a question; Correct is the answer key.
type Choice struct {
	ID      uuid.UUID
	Text    string
	Correct bool
}

// LoadContent returns every course with its quizzes, questions and choices,
// in display order, or the first error.
func (s *Store) LoadContent(ctx context.Context) ([]Course, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, wrap("load content: begin", err)
	}
	defer tx.Rollback(ctx)

	var courses []Course
	courseAt := map[uuid.UUID]int{}
	rows, _ := tx.Query(ctx, `SELECT id, slug, title, description FROM courses ORDER BY position, id`)
	var c Course
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Slug, &c.Title, &c.Description}, func() error {
		courseAt[c.ID] = len(courses)
		courses = append(courses, c)
		return nil
	})
	if err != nil {
		return nil, wrap("load courses", err)
	}

	type ref struct{ course, quiz int }
	quizAt := map[uuid.UUID]ref{}
	rows, _ = tx.Query(ctx, `SELECT id, course_id, title, time_limit_s, opens_at, closes_at, max_sessions, grace_s
		FROM quizzes ORDER BY position, id`)
	var q Quiz
	var ex examColumns
	_, err = pgx.ForEachRow(rows, []any{&q.ID, &q.CourseID, &q.Title, &ex.limit, &ex.opens, &ex.closes, &ex.max, &ex.grace}, func() error {
		q := q // the row's copy, with its exam settings
		ex.apply(&q)
		ci, ok := courseAt[q.CourseID]
		if !ok {
			return fmt.Errorf("quiz %s names unknown course %s", q.ID, q.CourseID)
		}
		quizAt[q.ID] = ref{ci, len(courses[ci].Quizzes)}
		courses[ci].Quizzes = append(courses[ci].Quizzes, q)
		return nil
	})
	if err != nil {
		return nil, wrap("load quizzes", err)
	}

	questionOf := map[uuid.UUID]*Question{}
	var pending []struct {
		quiz uuid.UUID
		q    Question
	}
	rows, _ = tx.Query(ctx, `SELECT id, quiz_id, prompt FROM questions ORDER BY position, id`)
	var qu Question
	var quizID uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&qu.ID, &quizID, &qu.Prompt}, func() error {
		pending = append(pending, struct {
			quiz uuid.UUID
			q    Question
		}{quizID, qu})
		return nil
	})
	if err != nil {
		return nil, wrap("load questions", err)
	}
	for _, p := range pending {
		r, ok := quizAt[p.quiz]
		if !ok {
			return nil, fmt.Errorf("load questions: question %s names unknown quiz %s", p.q.ID, p.quiz)
		}
		qz := &courses[r.course].Quizzes[r.quiz]
		qz.Questions = append(qz.Questions, p.q)
	}
	for ci := range courses {
		for qi := range courses[ci].Quizzes {
			qs := courses[ci].Quizzes[qi].Questions
			for i := range qs {
				questionOf[qs[i].ID] = &qs[i]
			}
		}
	}

	rows, _ = tx.Query(ctx, `SELECT id, question_id, text, correct FROM choices ORDER BY position, id`)
	var ch Choice
	var questionID uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&ch.ID, &questionID, &ch.Text, &ch.Correct}, func() error {
		qp, ok := questionOf[questionID]
		if !ok {
			return fmt.Errorf("choice %s names unknown question %s", ch.ID, questionID)
		}
		qp.Choices = append(qp.Choices, ch)
		return nil
	})
	if err != nil {
		return nil, wrap("load choices", err)
	}
	if err := loadExercises(ctx, tx, courses, courseAt); err != nil {
		return nil, err
	}
	return courses, nil
}

// SaveContent inserts or updates the given courses and everything in them
// in one transaction, leaving rows that are already equal untouched. It
// returns how many rows it changed; on error (ErrInvalid for a quiz
// setting out of its column's range) it changed none.
func (s *Store) SaveContent(ctx context.Context, courses []Course) (int64, error) {
	var (
		cID, cSlug, cTitle, cDesc, cPos       = []uuid.UUID{}, []string{}, []string{}, []string{}, []int32{}
		qID, qCourse, qTitle, qPos            = []uuid.UUID{}, []uuid.UUID{}, []string{}, []int32{}
		qLimit, qOpens, qCloses, qMax, qGrace = []*int32{}, []*time.Time{}, []*time.Time{}, []*int32{}, []*int32{}
		quID, quQuiz, quPrompt, quPos         = []uuid.UUID{}, []uuid.UUID{}, []string{}, []int32{}
		chID, chQuestion, chText, chOK, chPos = []uuid.UUID{}, []uuid.UUID{}, []string{}, []bool{}, []int32{}
	)
	for ci, c := range courses {
		cID, cSlug, cTitle, cDesc, cPos = append(cID, c.ID), append(cSlug, c.Slug), append(cTitle, c.Title), append(cDesc, c.Description), append(cPos, int32(ci))
		for qi, q := range c.Quizzes {
			qID, qCourse, qTitle, qPos = append(qID, q.ID), append(qCourse, c.ID), append(qTitle, q.Title), append(qPos, int32(qi))
			ex, err := examColumnsOf(q)
			if err != nil {
				return 0, fmt.Errorf("save content: quiz %s: %w", q.ID, err)
			}
			qLimit, qOpens, qCloses, qMax, qGrace = append(qLimit, ex.limit), append(qOpens, ex.opens), append(qCloses, ex.closes), append(qMax, ex.max), append(qGrace, ex.grace)
			for ui, qu := range q.Questions {
				quID, quQuiz, quPrompt, quPos = append(quID, qu.ID), append(quQuiz, q.ID), append(quPrompt, qu.Prompt), append(quPos, int32(ui))
				for hi, ch := range qu.Choices {
					chID, chQuestion, chText, chOK, chPos = append(chID, ch.ID), append(chQuestion, qu.ID), append(chText, ch.Text), append(chOK, ch.Correct), append(chPos, int32(hi))
				}
			}
		}
	}
	exArgs, err := exerciseArgs(courses)
	if err != nil {
		return 0, fmt.Errorf("save content: %w", err)
	}
	var changed int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, st := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO courses (id, slug, title, description, position)
			  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[])
			  ON CONFLICT (id) DO UPDATE SET slug = EXCLUDED.slug, title = EXCLUDED.title,
			    description = EXCLUDED.description, position = EXCLUDED.position
			  WHERE (courses.slug, courses.title, courses.description, courses.position)
			    IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.title, EXCLUDED.description, EXCLUDED.position)`,
				[]any{cID, cSlug, cTitle, cDesc, cPos}},
			{`INSERT INTO quizzes (id, course_id, title, position, time_limit_s, opens_at, closes_at, max_sessions, grace_s)
			  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[],
			    $5::int[], $6::timestamptz[], $7::timestamptz[], $8::int[], $9::int[])
			  ON CONFLICT (id) DO UPDATE SET course_id = EXCLUDED.course_id, title = EXCLUDED.title, position = EXCLUDED.position,
			    time_limit_s = EXCLUDED.time_limit_s, opens_at = EXCLUDED.opens_at, closes_at = EXCLUDED.closes_at,
			    max_sessions = EXCLUDED.max_sessions, grace_s = EXCLUDED.grace_s
			  WHERE (quizzes.course_id, quizzes.title, quizzes.position,
			      quizzes.time_limit_s, quizzes.opens_at, quizzes.closes_at, quizzes.max_sessions, quizzes.grace_s)
			    IS DISTINCT FROM (EXCLUDED.course_id, EXCLUDED.title, EXCLUDED.position,
			      EXCLUDED.time_limit_s, EXCLUDED.opens_at, EXCLUDED.closes_at, EXCLUDED.max_sessions, EXCLUDED.grace_s)`,
				[]any{qID, qCourse, qTitle, qPos, qLimit, qOpens, qCloses, qMax, qGrace}},
			{`INSERT INTO questions (id, quiz_id, prompt, position)
			  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[])
			  ON CONFLICT (id) DO UPDATE SET quiz_id = EXCLUDED.quiz_id, prompt = EXCLUDED.prompt, position = EXCLUDED.position
			  WHERE (questions.quiz_id, questions.prompt, questions.position)
			    IS DISTINCT FROM (EXCLUDED.quiz_id, EXCLUDED.prompt, EXCLUDED.position)`,
				[]any{quID, quQuiz, quPrompt, quPos}},
			{`INSERT INTO choices (id, question_id, text, correct, position)
			  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bool[], $5::int[])
			  ON CONFLICT (id) DO UPDATE SET question_id = EXCLUDED.question_id, text = EXCLUDED.text,
			    correct = EXCLUDED.correct, position = EXCLUDED.position
			  WHERE (choices.question_id, choices.text, choices.correct, choices.position)
			    IS DISTINCT FROM (EXCLUDED.question_id, EXCLUDED.text, EXCLUDED.correct, EXCLUDED.position)`,
				[]any{chID, chQuestion, chText, chOK, chPos}},
			{saveExercisesSQL, exArgs},
		} {
			tag, err := tx.Exec(ctx, st.sql, st.args...)
			if err != nil {
				return err
			}
			changed += tag.RowsAffected()
		}
		return nil
	})
	return changed, wrap("save content", err)
}

// examColumns are a quiz's exam settings as the quizzes table holds them:
// NULL for none.
type examColumns struct {
	limit, max, grace *int32
	opens, closes     *time.Time
}

// examColumnsOf returns q's exam settings as columns, or an error wrapping
// ErrInvalid when one is out of its column's range.
func examColumnsOf(q Quiz) (examColumns, error) {
	var ex examColumns
	column := func(name string, n int64) (*int32, error) {
		v, err := int32Of(name, n)
		return &v, err
	}
	var err error
	if q.TimeLimit != 0 {
		if ex.limit, err = column("time_limit_s", int64(q.TimeLimit/time.Second)); err != nil {
			return ex, err
		}
	}
	if !q.OpensAt.IsZero() {
		ex.opens = &q.OpensAt
	}
	if !q.ClosesAt.IsZero() {
		ex.closes = &q.ClosesAt
	}
	if q.MaxSessions != 0 {
		if ex.max, err = column("max_sessions", int64(q.MaxSessions)); err != nil {
			return ex, err
		}
	}
	if q.Grace != nil {
		if ex.grace, err = column("grace_s", int64(*q.Grace/time.Second)); err != nil {
			return ex, err
		}
	}
	return ex, nil
}

// apply sets the settings on q.
func (ex *examColumns) apply(q *Quiz) {
	if ex.limit != nil {
		q.TimeLimit = time.Duration(*ex.limit) * time.Second
	}
	if ex.opens != nil {
		q.OpensAt = ex.opens.UTC()
	}
	if ex.closes != nil {
		q.ClosesAt = ex.closes.UTC()
	}
	if ex.max != nil {
		q.MaxSessions = int(*ex.max)
	}
	if ex.grace != nil {
		g := time.Duration(*ex.grace) * time.Second
		q.Grace = &g
	}
}

// CoursesBySlug returns, for each of slugs that a course holds, that
// course's id; or the first error.
func (s *Store) CoursesBySlug(ctx context.Context, slugs []string) (map[string]uuid.UUID, error) {
	rows, _ := s.pool.Query(ctx, `SELECT slug, id FROM courses WHERE slug = ANY($1::text[])`, slugs)
	out := map[string]uuid.UUID{}
	var slug string
	var id uuid.UUID
	_, err := pgx.ForEachRow(rows, []any{&slug, &id}, func() error {
		out[slug] = id
		return nil
	})
	if err != nil {
		return nil, wrap("courses by slug", err)
	}
	return out, nil
}
