package api

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
)

// ReadModel is what the API needs of the student read model
// (readmodel.Model).
type ReadModel interface {
	// Get returns a student's value, readmodel.ErrMissing, or the error.
	Get(ctx context.Context, student uuid.UUID) (readmodel.Student, uint64, error)
	// Seed builds a student's value from PostgreSQL as of an ack floor
	// read before, stores it unless the model holds one, and returns the
	// value held then (worker.SeedModel), or the error.
	Seed(ctx context.Context, student uuid.UUID, floor uint64) (readmodel.Student, error)
	// GetSessions and GetChecks return a student's sessions and newest
	// checks, readmodel.ErrMissing, or the error.
	GetSessions(ctx context.Context, student uuid.UUID) (readmodel.Sessions, uint64, error)
	GetChecks(ctx context.Context, student uuid.UUID) (readmodel.Checks, uint64, error)
	// SeedSessions and SeedChecks build them from PostgreSQL, store them
	// unless the model holds them, and return what the model holds then
	// (worker.SeedSessions, worker.SeedChecks), or the error.
	SeedSessions(ctx context.Context, student uuid.UUID) (readmodel.Sessions, error)
	SeedChecks(ctx context.Context, student uuid.UUID) (readmodel.Checks, error)
}

// Reads the model answers, in the fallback metric.
const (
	readProgress = "progress"
	readAttempts = "attempts"
	readAttempt  = "attempt"
)

// modelStudent returns the student's value from the read model, or false
// with the fallback counted (the read then goes to PostgreSQL). The
// model holds every event at or below any ack floor read before this
// call (workers fold before they acknowledge), so a read that took the
// floor first and merges the unsettled events above it misses nothing.
func (s *Server) modelStudent(ctx context.Context, read string, student uuid.UUID) (readmodel.Student, bool) {
	if s.model == nil {
		s.fallback(read, "no_model")
		return readmodel.Student{}, false
	}
	v, _, err := s.model.Get(ctx, student)
	if errors.Is(err, readmodel.ErrMissing) {
		// A student the model lacks is read from PostgreSQL and the value
		// stored (unless a worker stored one meanwhile: then that one is
		// answered). A plain query here could show attempts committed
		// but not yet folded, and the next read, from the model, fewer.
		s.fallback(read, "missing")
		floor, err := s.ackFloor(ctx)
		if err != nil {
			return readmodel.Student{}, false
		}
		if v, err = s.model.Seed(ctx, student, floor); err != nil {
			s.log.Debug("api: seeding the read model failed; reading PostgreSQL", "err", err)
			return readmodel.Student{}, false
		}
		return v, true
	}
	if err != nil {
		s.log.Debug("api: read model get failed; reading PostgreSQL", "err", err)
		s.fallback(read, "error")
		return readmodel.Student{}, false
	}
	return v, true
}

func (s *Server) fallback(read, reason string) {
	s.metrics.fallbacks.WithLabelValues(read, reason).Inc()
}

// progressRows returns a student's progress rows: from the model, else
// from PostgreSQL.
func (s *Server) progressRows(ctx context.Context, student uuid.UUID) ([]store.Progress, error) {
	v, ok := s.modelStudent(ctx, readProgress, student)
	if !ok {
		return s.store.GetProgress(ctx, student)
	}
	rows := make([]store.Progress, len(v.Progress), len(v.Progress)+len(v.Passed))
	for i, q := range v.Progress {
		rows[i] = store.Progress{QuizID: q.QuizID, CourseID: q.CourseID, Attempts: q.Attempts, BestScore: q.Best}
	}
	// The exercises passed, one row per course, as store.GetProgress has them.
	passed := map[uuid.UUID]int{}
	for _, p := range v.Passed {
		passed[p.CourseID]++
	}
	for course, n := range passed {
		rows = append(rows, store.Progress{CourseID: course, ExercisesPassed: n})
	}
	return rows, nil
}

// storedPage returns the stored attempts of the page p asks for (up to
// p.Limit of them): from the model when it holds them all (a student
// whose every attempt is in its page, or a first page without filter
// within the page's length), else from PostgreSQL, where with the model
// on those in unsettled (above the ack floor) read as accepted.
func (s *Server) storedPage(ctx context.Context, p store.ListAttemptsParams, unsettled map[uuid.UUID]bool) ([]attemptJSON, error) {
	v, ok := s.modelStudent(ctx, readAttempts, p.StudentID)
	if ok && !v.Complete() {
		switch {
		case p.QuizID != uuid.Nil:
			ok = false
			s.fallback(readAttempts, "filter")
		case p.After != nil:
			ok = false
			s.fallback(readAttempts, "cursor")
		case p.Limit > len(v.Page):
			ok = false
			s.fallback(readAttempts, "limit")
		}
	}
	if !ok {
		rows, err := s.store.ListAttempts(ctx, p)
		if err != nil {
			return nil, err
		}
		out := make([]attemptJSON, len(rows))
		for i, a := range rows {
			out[i] = attemptFromRow(a)
			// With the model on, an attempt it has not folded yet is
			// unsettled, whatever PostgreSQL holds: accepted, as
			// progress (the model's) does not count it yet.
			if s.model != nil && unsettled[a.ID] {
				out[i].Status = statusAccepted
			}
		}
		return out, nil
	}
	out := make([]attemptJSON, 0, min(p.Limit, len(v.Page)))
	var cursor attemptJSON
	if p.After != nil {
		cursor = attemptJSON{SubmittedAt: p.After.SubmittedAt, AttemptID: p.After.ID}
	}
	for _, a := range v.Page {
		j := attemptFromModel(p.StudentID, a)
		if (p.QuizID != uuid.Nil && a.QuizID != p.QuizID) || (p.After != nil && !before(cursor, j)) {
			continue
		}
		if len(out) == p.Limit {
			break
		}
		out = append(out, j)
	}
	return out, nil
}

// modelAttempt returns one attempt from the model: found (recorded or
// failed); or, when the model holds every attempt of the student, known
// not stored (stored false); or ok false, and PostgreSQL must be asked.
func (s *Server) modelAttempt(ctx context.Context, student, id uuid.UUID) (a attemptJSON, stored, ok bool) {
	v, ok := s.modelStudent(ctx, readAttempt, student)
	if !ok {
		return attemptJSON{}, false, false
	}
	if m, found := v.Find(id); found {
		return attemptFromModel(student, m), true, true
	}
	if v.Complete() {
		return attemptJSON{}, false, true
	}
	s.fallback(readAttempt, "older")
	return attemptJSON{}, false, false
}

func attemptFromModel(student uuid.UUID, a readmodel.Attempt) attemptJSON {
	status := statusRecorded
	if a.Failed {
		status = statusFailed
	}
	return attemptJSON{AttemptID: a.ID, QuizID: a.QuizID, StudentID: student, Score: a.Score, MaxScore: a.MaxScore,
		Status: status, SubmittedAt: a.SubmittedAt.UTC()}
}
