package api

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
)

// A student's exam sessions and newest checks are values of their own in
// the read model, folded by their families' writers after the commit and
// before the ack (worker.Projector.ProjectSessions, ProjectChecks): every
// event at or below those families' ack floors is in them, and the reads
// merge the stream above the floor over them, as they merged PostgreSQL's
// rows. Their folds are joins, so a value built from PostgreSQL at any
// time is one the writers can fold onto.

// Reads of sessions and checks the model answers, in the fallback metric.
const (
	readSessions = "sessions"
	readSession  = "session"
	readChecks   = "checks"
	readCheck    = "check"
)

// modelSessions returns the student's sessions from the model, or false
// with the fallback counted (the read then goes to PostgreSQL).
func (s *Server) modelSessions(ctx context.Context, read string, student uuid.UUID) (readmodel.Sessions, bool) {
	if s.model == nil {
		s.fallback(read, "no_model")
		return readmodel.Sessions{}, false
	}
	v, _, err := s.model.GetSessions(ctx, student)
	if errors.Is(err, readmodel.ErrMissing) {
		s.fallback(read, "missing")
		v, err = s.model.SeedSessions(ctx, student)
	} else if err != nil {
		s.fallback(read, "error")
	}
	if err != nil {
		s.log.Debug("api: read model sessions failed; reading PostgreSQL", "err", err)
		return readmodel.Sessions{}, false
	}
	if v.Over {
		s.fallback(read, "size")
		return readmodel.Sessions{}, false
	}
	return v, true
}

// modelChecks returns the student's newest checks from the model, or
// false with the fallback counted.
func (s *Server) modelChecks(ctx context.Context, read string, student uuid.UUID) (readmodel.Checks, bool) {
	if s.model == nil {
		s.fallback(read, "no_model")
		return readmodel.Checks{}, false
	}
	v, _, err := s.model.GetChecks(ctx, student)
	if errors.Is(err, readmodel.ErrMissing) {
		s.fallback(read, "missing")
		v, err = s.model.SeedChecks(ctx, student)
	} else if err != nil {
		s.fallback(read, "error")
	}
	if err != nil {
		s.log.Debug("api: read model checks failed; reading PostgreSQL", "err", err)
		return readmodel.Checks{}, false
	}
	return v, true
}

// storedSession returns one stored session (an empty one when none is
// stored): from the model, else from PostgreSQL.
func (x *exams) storedSession(ctx context.Context, student, id uuid.UUID) (*events.ExamSession, error) {
	if v, ok := x.s.modelSessions(ctx, readSession, student); ok {
		if m, found := v.Find(id); found {
			return sessionFromModel(student, m), nil
		}
		return events.NewExamSession(), nil
	}
	row, err := x.s.store.GetExamSession(ctx, student, id)
	switch {
	case err == nil:
		return fromRow(row), nil
	case errors.Is(err, store.ErrNotFound):
		return events.NewExamSession(), nil
	}
	return nil, err
}

// storedSessions returns the student's stored sessions (of one quiz
// unless quiz is uuid.Nil) by id: from the model, else from PostgreSQL.
func (x *exams) storedSessions(ctx context.Context, student, quiz uuid.UUID) (map[uuid.UUID]*events.ExamSession, error) {
	if v, ok := x.s.modelSessions(ctx, readSessions, student); ok {
		out := make(map[uuid.UUID]*events.ExamSession, len(v.List))
		for _, m := range v.List {
			// One not started is shown only if its start is above the
			// floor, which the caller's events of the quiz hold.
			if m.Started == nil || quiz == uuid.Nil || m.Started.QuizID == quiz {
				out[m.ID] = sessionFromModel(student, m)
			}
		}
		return out, nil
	}
	rows, err := x.s.store.ListExamSessions(ctx, student, quiz)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]*events.ExamSession, len(rows))
	for _, r := range rows {
		out[r.ID] = fromRow(r)
	}
	return out, nil
}

// sessionFromModel is a session of the model as a folded one, as fromRow
// is for a stored one.
func sessionFromModel(student uuid.UUID, m readmodel.Session) *events.ExamSession {
	st := events.NewExamSession()
	var quiz, course uuid.UUID
	if b := m.Started; b != nil {
		quiz, course = b.QuizID, b.CourseID
		st.Started = &events.ExamStarted{SessionID: m.ID, StudentID: student, QuizID: b.QuizID, CourseID: b.CourseID,
			StartedAt: b.StartedAt, Deadline: b.Deadline, GraceS: b.GraceS}
	}
	for _, a := range m.Answers {
		st.Answers[a.QuestionID] = events.AnswerSaved{SessionID: m.ID, StudentID: student, QuizID: quiz,
			QuestionID: a.QuestionID, ChoiceID: a.ChoiceID, Seq: a.Seq, SavedAt: a.SavedAt}
	}
	if f := m.Final; f != nil {
		st.Final = &events.ExamFinalized{SessionID: m.ID, StudentID: student, QuizID: quiz, CourseID: course,
			By: f.By, AttemptID: f.AttemptID, SubmittedAt: f.SubmittedAt}
	}
	return st
}

// storedCheck returns one stored check, store.ErrNotFound, or the error:
// from the model when its page holds it (with its output) or holds every
// check of the student, else from PostgreSQL.
func (s *Server) storedCheck(ctx context.Context, student, id uuid.UUID) (checkJSON, error) {
	if v, ok := s.modelChecks(ctx, readCheck, student); ok {
		c, found := v.Find(id)
		switch {
		case found && !c.Cut:
			return checkFromModel(student, c), nil
		case found:
			s.fallback(readCheck, "output")
		case v.Complete():
			return checkJSON{}, store.ErrNotFound
		default:
			s.fallback(readCheck, "older")
		}
	}
	row, err := s.store.GetCheck(ctx, student, id)
	if err != nil {
		return checkJSON{}, err
	}
	return checkFromRow(row), nil
}

// storedChecks returns the stored checks of the page p asks for (up to
// p.Limit of them): from the model when it holds them all with their
// output (a student whose every check is in its page, or a first page
// without filter within the page's length), else from PostgreSQL.
func (s *Server) storedChecks(ctx context.Context, p store.ListChecksParams) ([]checkJSON, error) {
	v, ok := s.modelChecks(ctx, readChecks, p.StudentID)
	if ok && !v.Complete() {
		switch {
		case p.ExerciseID != uuid.Nil:
			ok = false
			s.fallback(readChecks, "filter")
		case p.After != nil:
			ok = false
			s.fallback(readChecks, "cursor")
		case p.Limit > len(v.Page):
			ok = false
			s.fallback(readChecks, "limit")
		}
	}
	if ok {
		out := make([]checkJSON, 0, min(p.Limit, len(v.Page)))
		for _, c := range v.Page {
			j := checkFromModel(p.StudentID, c)
			if (p.ExerciseID != uuid.Nil && c.ExerciseID != p.ExerciseID) ||
				(p.After != nil && !checkBefore(p.After.SubmittedAt, p.After.ID, j)) {
				continue
			}
			if len(out) == p.Limit {
				break
			}
			if c.Cut {
				ok = false
				s.fallback(readChecks, "output")
				break
			}
			out = append(out, j)
		}
		if ok {
			return out, nil
		}
	}
	rows, err := s.store.ListChecks(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]checkJSON, len(rows))
	for i, r := range rows {
		out[i] = checkFromRow(r)
	}
	return out, nil
}

func checkFromModel(student uuid.UUID, c readmodel.Check) checkJSON {
	out := checkJSON{CheckID: c.ID, ExerciseID: c.ExerciseID, StudentID: student, Language: c.Language, Status: c.Status,
		SubmittedAt: c.SubmittedAt.UTC(), Tests: []checkTestJSON{}, Output: c.Output}
	if c.FinishedAt != nil {
		f := c.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	for _, t := range c.Tests {
		out.Tests = append(out.Tests, checkTestJSON(t))
	}
	return out
}
