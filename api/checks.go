package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

// Code checks (API v1.1, "Code checks"; docs/checker.md). A check is the
// third event family: its request is published to the CHECKS stream and
// answered 202 from the PubAck, a checker runs it off the request path,
// and the student reads merge the projection with the stream (the row or
// the stream, whichever is further along).

// CheckLog is what the API needs of the code-checks event log (eventlog.CheckLog).
type CheckLog interface {
	// Request publishes a check request, or returns the original of its
	// check id with Duplicate set.
	Request(ctx context.Context, r events.CodeCheckRequested) (eventlog.RequestPublished, error)
	// Check returns a check folded from the stream, or eventlog.ErrNoCheck.
	Check(ctx context.Context, student, check uuid.UUID) (*eventlog.CheckState, error)
	// StudentChecks returns the student's checks with events above a sequence.
	StudentChecks(ctx context.Context, student uuid.UUID, after uint64, max int) ([]*eventlog.CheckState, bool, error)
	// AckFloor returns the sequence up to which every event is in PostgreSQL.
	AckFloor(ctx context.Context) (uint64, error)
}

// checkBodyLimit is the most bytes a check's body may have: a source of
// events.MaxSource bytes, every one escaped as JSON at worst, and the rest.
const checkBodyLimit = 6*events.MaxSource + 4096

type checkRequest struct {
	Language *string `json:"language"`
	Source   *string `json:"source"`
}

type checkTestJSON struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	TimeMS int64  `json:"time_ms"`
}

type checkJSON struct {
	CheckID     uuid.UUID       `json:"check_id"`
	ExerciseID  uuid.UUID       `json:"exercise_id"`
	StudentID   uuid.UUID       `json:"student_id"`
	Language    string          `json:"language"`
	Status      string          `json:"status"`
	SubmittedAt time.Time       `json:"submitted_at"`
	FinishedAt  *time.Time      `json:"finished_at"`
	Tests       []checkTestJSON `json:"tests"`
	Output      string          `json:"output"`
}

type checkPage struct {
	Checks     []checkJSON `json:"checks"`
	NextCursor *string     `json:"next_cursor"`
}

func checkFromRow(r store.Check) checkJSON {
	out := checkJSON{CheckID: r.ID, ExerciseID: r.ExerciseID, StudentID: r.StudentID, Language: r.Language, Status: r.Status,
		SubmittedAt: r.SubmittedAt.UTC(), Tests: []checkTestJSON{}, Output: r.Output}
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	for _, t := range r.Tests {
		out.Tests = append(out.Tests, checkTestJSON(t))
	}
	return out
}

func checkFromState(st *eventlog.CheckState) checkJSON {
	r := st.Ref
	out := checkJSON{CheckID: r.CheckID, ExerciseID: r.ExerciseID, StudentID: r.StudentID, Language: r.Language,
		Status: st.Status(), SubmittedAt: r.SubmittedAt.UTC(), Tests: []checkTestJSON{}}
	if c := st.Completed; c != nil {
		f := c.FinishedAt.UTC()
		out.FinishedAt, out.Output = &f, c.Output
		for _, t := range c.Tests {
			out.Tests = append(out.Tests, checkTestJSON(t))
		}
	}
	return out
}

// further returns whichever of a and b is further along.
func further(a, b checkJSON) checkJSON {
	if events.CheckRank(b.Status) > events.CheckRank(a.Status) {
		return b
	}
	return a
}

func (s *Server) checksReady() error {
	if s.cfg.Checks == nil {
		return unavailable("code checks")
	}
	return nil
}

// submitCheck accepts a program for an exercise: 202 once the request is
// in the event log. Nothing is published for a bad input.
func (s *Server) submitCheck(c echo.Context) error {
	var body checkRequest
	if err := s.decodeLimited(c, &body, max(s.cfg.BodyLimit, checkBodyLimit)); err != nil {
		return err
	}
	if body.Language == nil || body.Source == nil {
		return invalid("malformed JSON body: language and source are required")
	}
	lang, source := *body.Language, *body.Source
	if len(source) > events.MaxSource {
		return &Error{http.StatusRequestEntityTooLarge, "payload_too_large", "source is over 64 KiB"}
	}
	exerciseID, err := uuid.Parse(c.Param("exercise_id"))
	if err != nil {
		return notFound("exercise")
	}
	ex, ok := s.content.Load().exercises[exerciseID]
	if !ok {
		return notFound("exercise")
	}
	key := c.Request().Header.Get("Idempotency-Key")
	switch {
	case !utf8.ValidString(key):
		return invalid("Idempotency-Key must be UTF-8 text")
	case utf8.RuneCountInString(key) > events.MaxIdempotencyKey:
		return invalid("Idempotency-Key must be at most %d characters", events.MaxIdempotencyKey)
	case !ex.allows(lang):
		return invalid("language %q is not one of this exercise's: %s", lang, strings.Join(ex.languages, ", "))
	case strings.TrimSpace(source) == "":
		return invalid("source must not be empty")
	case strings.ContainsRune(source, 0):
		return invalid("source must not hold a NUL character")
	}
	if err := s.checksReady(); err != nil {
		return err
	}
	student := session(c).Student.ID
	req := events.CodeCheckRequested{CheckRef: events.CheckRef{
		CheckID: events.CheckID(student, key), StudentID: student, ExerciseID: ex.id, CourseID: ex.courseID,
		IdempotencyKey: key, Language: lang, SourceHash: events.HashSource(ex.id, lang, source),
		SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}, Source: source}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.PublishTimeout)
	defer cancel()
	pub, err := s.cfg.Checks.Request(ctx, req)
	if err != nil {
		s.log.Debug("api: publishing a check request failed", "err", err)
		return unavailable("the event log")
	}
	if !pub.Duplicate {
		return writeJSON(c, http.StatusAccepted, checkFromState(&eventlog.CheckState{Ref: pub.Request.CheckRef, Requested: pub.Request}))
	}
	orig := pub.Request
	if !bytes.Equal(orig.SourceHash, req.SourceHash) || orig.StudentID != student {
		return errKeyReused
	}
	// The same check again: as it is now.
	st, err := s.cfg.Checks.Check(ctx, student, orig.CheckID)
	if err != nil {
		st = &eventlog.CheckState{Ref: orig.CheckRef, Requested: orig}
	}
	out := checkFromState(st)
	if row, err := s.store.GetCheck(ctx, student, orig.CheckID); err == nil {
		out = further(out, checkFromRow(row))
	}
	return writeJSON(c, http.StatusAccepted, out)
}

// getCheck answers one of the student's checks: the stored one (the read
// model's, else PostgreSQL's row), or the stream's, whichever is further
// along (a final one needs no stream read).
func (s *Server) getCheck(c echo.Context) error {
	id, err := uuid.Parse(c.Param("check_id"))
	if err != nil {
		return notFound("check")
	}
	if err := s.checksReady(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	student := session(c).Student.ID
	row, rowErr := s.storedCheck(ctx, student, id)
	if rowErr == nil && events.CheckRank(row.Status) == events.CheckRank(events.CheckPassed) {
		return writeJSON(c, http.StatusOK, row)
	}
	st, err := s.cfg.Checks.Check(ctx, student, id)
	switch {
	case err == nil && rowErr == nil:
		return writeJSON(c, http.StatusOK, further(row, checkFromState(st)))
	case err == nil:
		return writeJSON(c, http.StatusOK, checkFromState(st))
	case !errors.Is(err, eventlog.ErrNoCheck) && rowErr == nil:
		return writeJSON(c, http.StatusOK, row)
	case !errors.Is(err, eventlog.ErrNoCheck):
		s.log.Debug("api: reading a check from the event log failed", "err", err)
		return unavailable("the event log")
	case errors.Is(rowErr, store.ErrNotFound):
		return notFound("check")
	case rowErr != nil:
		return rowErr
	}
	return writeJSON(c, http.StatusOK, row)
}

// listChecks answers a page of the student's checks, newest first: the
// stored ones (the read model's, else PostgreSQL's rows) merged with the stream's checks above the check writers'
// ack floor, as listAttempts does.
func (s *Server) listChecks(c echo.Context) error {
	p := store.ListChecksParams{StudentID: session(c).Student.ID}
	var err error
	if p.Limit, p.After, err = pageQuery(c); err != nil {
		return err
	}
	if v := c.QueryParam("exercise_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil || id == uuid.Nil {
			return writeJSON(c, http.StatusOK, checkPage{Checks: []checkJSON{}})
		}
		p.ExerciseID = id
	}
	if err := s.checksReady(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	floor, err := s.checkFloor.get(ctx, s.cfg.Checks.AckFloor, s.cfg.AckFloorMaxAge)
	if err != nil {
		return unavailable("the event log")
	}
	want := p.Limit
	p.Limit++
	pending, more, err := s.cfg.Checks.StudentChecks(ctx, p.StudentID, floor, 3*maxPending)
	if err != nil {
		s.log.Debug("api: reading pending checks from the event log failed", "err", err)
		return unavailable("the event log")
	}
	if more {
		s.log.Warn("api: a student has too many unstored checks to list; are the workers running?", "student_id", p.StudentID)
		return unavailable("the checks list")
	}
	rows, err := s.storedChecks(ctx, p)
	if err != nil {
		return err
	}
	at := map[uuid.UUID]int{}
	out := make([]checkJSON, 0, len(rows)+len(pending))
	for _, r := range rows {
		at[r.CheckID] = len(out)
		out = append(out, r)
	}
	for _, st := range pending {
		ch := checkFromState(st)
		if p.ExerciseID != uuid.Nil && ch.ExerciseID != p.ExerciseID {
			continue
		}
		if p.After != nil && !checkBefore(p.After.SubmittedAt, p.After.ID, ch) {
			continue
		}
		if i, ok := at[ch.CheckID]; ok {
			out[i] = further(out[i], ch)
			continue
		}
		at[ch.CheckID] = len(out)
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b checkJSON) int {
		if checkBefore(a.SubmittedAt, a.CheckID, b) {
			return -1
		}
		return 1
	})
	page := checkPage{Checks: out}
	if len(out) > want {
		page.Checks = out[:want]
		last := out[want-1]
		cur := encodeCursor(store.Cursor{SubmittedAt: last.SubmittedAt, ID: last.CheckID})
		page.NextCursor = &cur
	}
	return writeJSON(c, http.StatusOK, page)
}

// checkBefore reports whether (at, id) sorts before b: submitted_at
// descending, then check_id descending.
func checkBefore(at time.Time, id uuid.UUID, b checkJSON) bool {
	if !at.Equal(b.SubmittedAt) {
		return at.After(b.SubmittedAt)
	}
	return bytes.Compare(id[:], b.CheckID[:]) > 0
}
