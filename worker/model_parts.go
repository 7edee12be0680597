package worker

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
)

// A student's exam sessions and newest checks are values of their own in
// the read model (readmodel.Sessions, readmodel.Checks), folded by their
// families' writers after the commit and before the ack, as the passes
// are: those families' rates are low, and so every event at or below
// their ack floor is in the model. Their folds are joins, so a batch
// delivered again, or a value built from PostgreSQL after the commit and
// then folded, changes nothing.

// ProjectSessions folds committed session events into the model,
// retrying each student's until it is put or ctx ends; it returns ctx's
// error then, after which the records must not be acknowledged.
func (p *Projector) ProjectSessions(ctx context.Context, evs []events.ExamEvent) error {
	by := map[uuid.UUID][]events.ExamEvent{}
	for _, e := range evs {
		student, _, _ := e.IDs()
		by[student] = append(by[student], e)
	}
	return eachStudent(ctx, p, by, func(ctx context.Context, id uuid.UUID, evs []events.ExamEvent) error {
		return foldPart(ctx, p, id, evs, p.model.GetSessions, putSessions(p.model),
			func(ctx context.Context, id uuid.UUID) (readmodel.Sessions, error) {
				return SessionsFromPostgres(ctx, p.store, id)
			},
			(*readmodel.Sessions).Apply)
	})
}

// ProjectChecks folds committed check rows into the model, as
// ProjectSessions folds sessions.
func (p *Projector) ProjectChecks(ctx context.Context, rows []store.Check) error {
	by := map[uuid.UUID][]readmodel.Check{}
	for _, r := range rows {
		by[r.StudentID] = append(by[r.StudentID], CheckFromRow(r))
	}
	return eachStudent(ctx, p, by, func(ctx context.Context, id uuid.UUID, cs []readmodel.Check) error {
		return foldPart(ctx, p, id, cs, p.model.GetChecks, p.model.PutChecks,
			func(ctx context.Context, id uuid.UUID) (readmodel.Checks, error) {
				return ChecksFromPostgres(ctx, p.store, id)
			},
			(*readmodel.Checks).Apply)
	})
}

// eachStudent runs fold for each student of by, a few at once, retrying
// each until it succeeds or ctx ends.
func eachStudent[E any](ctx context.Context, p *Projector, by map[uuid.UUID][]E, fold func(context.Context, uuid.UUID, []E) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(projectConcurrency)
	for student, items := range by {
		g.Go(func() error {
			return retry.Do(gctx, retry.Policy{Initial: 5 * time.Millisecond, Max: p.backoff}, retry.Always,
				func(err error, d time.Duration) {
					if errors.Is(err, readmodel.ErrConflict) {
						p.metrics.folds.WithLabelValues("conflict").Inc()
						return
					}
					p.log.Warn("worker: read model fold failed, retrying", "err", err, "retry_in", d)
				}, func() error { return fold(gctx, student, items) })
		})
	}
	return g.Wait()
}

// foldPart reads one student's value, folds items into it and puts it
// back with a compare-and-set if it changed. A value the model lacks, or
// cannot fold an item into exactly, is built from PostgreSQL, where the
// items are committed already: an item it cannot fold after that is in
// the value built.
func foldPart[T, E any](ctx context.Context, p *Projector, id uuid.UUID, items []E,
	get func(context.Context, uuid.UUID) (T, uint64, error), put func(context.Context, uuid.UUID, *T, uint64) (uint64, error),
	seed func(context.Context, uuid.UUID) (T, error), apply func(*T, E) readmodel.Result) error {
	v, rev, err := get(ctx, id)
	seeded := false
	switch {
	case errors.Is(err, readmodel.ErrMissing):
		p.metrics.folds.WithLabelValues("reseeded").Inc()
		if v, err = seed(ctx, id); err != nil {
			return err
		}
		seeded = true
	case err != nil:
		return err
	}
	changed := seeded
	for _, it := range items {
		switch apply(&v, it) {
		case readmodel.Folded:
			changed = true
			p.metrics.folds.WithLabelValues("folded").Inc()
		case readmodel.Skipped:
			p.metrics.folds.WithLabelValues("skipped").Inc()
		case readmodel.Reseed:
			if seeded {
				continue
			}
			p.metrics.folds.WithLabelValues("reseeded").Inc()
			if v, err = seed(ctx, id); err != nil {
				return err
			}
			seeded, changed = true, true
		}
	}
	if !changed {
		return nil
	}
	_, err = put(ctx, id, &v, rev)
	return err
}

// putSessions is the model's PutSessions of a value made to fit first.
func putSessions(m *readmodel.Model) func(context.Context, uuid.UUID, *readmodel.Sessions, uint64) (uint64, error) {
	return func(ctx context.Context, id uuid.UUID, s *readmodel.Sessions, rev uint64) (uint64, error) {
		s.Fit()
		return m.PutSessions(ctx, id, s, rev)
	}
}

// SessionsFromPostgres is a student's sessions value as PostgreSQL holds
// them now.
func SessionsFromPostgres(ctx context.Context, st *store.Store, id uuid.UUID) (readmodel.Sessions, error) {
	rows, err := st.ListExamSessions(ctx, id, uuid.Nil)
	if err != nil {
		return readmodel.Sessions{}, err
	}
	return SessionsFromRows(rows), nil
}

// SessionsFromRows is the value stored sessions give: the one mapping
// from rows to a value, which workers, the API and the rebuild share.
func SessionsFromRows(rows []store.ExamSessionRow) readmodel.Sessions {
	var v readmodel.Sessions
	for _, r := range rows {
		x := readmodel.Session{ID: r.ID, Started: &readmodel.SessionStart{QuizID: r.QuizID, CourseID: r.CourseID,
			StartedAt: r.StartedAt.UTC(), Deadline: r.Deadline.UTC(), GraceS: r.GraceS}}
		for _, a := range r.Answers {
			x.Answers = append(x.Answers, readmodel.SavedAnswer{QuestionID: a.QuestionID, ChoiceID: a.ChoiceID, Seq: a.Seq,
				SavedAt: a.SavedAt.UTC()})
		}
		slices.SortFunc(x.Answers, func(a, b readmodel.SavedAnswer) int { return bytes.Compare(a.QuestionID[:], b.QuestionID[:]) })
		if f := r.Final; f != nil {
			x.Final = &readmodel.SessionFinal{By: f.By, AttemptID: f.AttemptID, SubmittedAt: f.SubmittedAt.UTC()}
		}
		v.List = append(v.List, x)
	}
	slices.SortFunc(v.List, func(a, b readmodel.Session) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	v.Fit()
	return v
}

// ChecksFromPostgres is a student's checks value as PostgreSQL holds
// them now.
func ChecksFromPostgres(ctx context.Context, st *store.Store, id uuid.UUID) (readmodel.Checks, error) {
	snap, err := st.GetCheckSnapshot(ctx, id, readmodel.PageSize)
	if err != nil {
		return readmodel.Checks{}, err
	}
	v := readmodel.Checks{Total: snap.Total}
	for _, r := range snap.Page {
		v.Page = append(v.Page, CheckFromRow(r))
	}
	return v, nil
}

// CheckFromRow is a stored check as the model holds it.
func CheckFromRow(r store.Check) readmodel.Check {
	c := readmodel.Check{ID: r.ID, ExerciseID: r.ExerciseID, Language: r.Language, Status: r.Status,
		SubmittedAt: r.SubmittedAt.UTC(), Output: r.Output}
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC()
		c.FinishedAt = &f
	}
	for _, t := range r.Tests {
		c.Tests = append(c.Tests, events.CheckTest(t))
	}
	c.Trim()
	return c
}

// SeedSessions builds a student's sessions value from PostgreSQL (read
// after the exam writers' ack floor) and stores it unless the model holds
// one already, and returns the value the model holds then, as SeedModel
// does for the student's value.
func SeedSessions(ctx context.Context, model *readmodel.Model, st *store.Store, id uuid.UUID) (readmodel.Sessions, error) {
	v, err := SessionsFromPostgres(ctx, st, id)
	if err != nil {
		return v, err
	}
	return seedPart(ctx, id, v, model.PutSessions, model.GetSessions)
}

// SeedChecks is SeedSessions for a student's checks (read after the
// check writers' ack floor).
func SeedChecks(ctx context.Context, model *readmodel.Model, st *store.Store, id uuid.UUID) (readmodel.Checks, error) {
	v, err := ChecksFromPostgres(ctx, st, id)
	if err != nil {
		return v, err
	}
	return seedPart(ctx, id, v, model.PutChecks, model.GetChecks)
}

func seedPart[T any](ctx context.Context, id uuid.UUID, v T, put func(context.Context, uuid.UUID, *T, uint64) (uint64, error),
	get func(context.Context, uuid.UUID) (T, uint64, error)) (T, error) {
	_, err := put(ctx, id, &v, 0)
	if !errors.Is(err, readmodel.ErrConflict) {
		return v, err
	}
	held, _, err := get(ctx, id)
	if errors.Is(err, readmodel.ErrMissing) {
		return v, nil
	}
	return held, err
}
