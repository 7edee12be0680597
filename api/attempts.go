package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/tail"
)

// PositionHeader carries a 202's place in the event log. A client that
// sends back the highest it was given on its reads of attempts spares
// them a round trip: the API then waits only for its own view of the log
// to pass it (read-your-writes stays exact for that client's writes).
// Reads without it learn the log's position themselves.
const PositionHeader = "Quizstream-Position"

// readContext is a student read's context: with the position the client
// sent back, when it sent one.
func readContext(c echo.Context) context.Context {
	ctx := c.Request().Context()
	if v := c.Request().Header.Get(PositionHeader); v != "" {
		if seq, err := strconv.ParseUint(v, 10, 64); err == nil {
			return tail.WithPosition(ctx, seq)
		}
	}
	return ctx
}

// givePosition answers an attempt the log holds at seq: its 202 carries
// seq, and this instance's own limit checks wait for it.
func (s *Server) givePosition(c echo.Context, seq uint64) {
	raise(&s.published, seq)
	c.Response().Header().Set(PositionHeader, strconv.FormatUint(seq, 10))
}

// raise sets a to v unless it holds more already.
func raise(a *atomic.Uint64, v uint64) {
	for cur := a.Load(); v > cur; cur = a.Load() {
		if a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// Attempt statuses as the HTTP contract names them.
const (
	statusAccepted = "accepted"
	statusRecorded = "recorded"
	statusFailed   = "failed"
)

type attemptJSON struct {
	AttemptID   uuid.UUID `json:"attempt_id"`
	QuizID      uuid.UUID `json:"quiz_id"`
	StudentID   uuid.UUID `json:"student_id"`
	Score       int       `json:"score"`
	MaxScore    int       `json:"max_score"`
	Status      string    `json:"status"`
	SubmittedAt time.Time `json:"submitted_at"`
}

type submitRequest struct {
	Answers *[]events.Answer `json:"answers"`
}

// grade checks answers against the quiz's answer key and returns the score:
// one point per correctly answered question. It returns an invalid-request
// error for an unknown question or choice, or a question answered twice.
func grade(q *quizKey, answers []events.Answer) (int, error) {
	seen := make(map[string]bool, len(answers))
	score := 0
	for _, a := range answers {
		choices, ok := q.choices[a.QuestionID]
		if !ok {
			return 0, invalid("unknown question %q", a.QuestionID)
		}
		if seen[a.QuestionID] {
			return 0, invalid("question %q is answered twice", a.QuestionID)
		}
		seen[a.QuestionID] = true
		correct, ok := choices[a.ChoiceID]
		if !ok {
			return 0, invalid("unknown choice %q for question %q", a.ChoiceID, a.QuestionID)
		}
		if correct {
			score++
		}
	}
	return score, nil
}

// submitAttempt grades an attempt and publishes it; it answers 202 only
// from the stream's acknowledgement, and touches no database.
func (s *Server) submitAttempt(c echo.Context) error {
	var req submitRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	// A body without its required field is malformed: judged before the
	// quiz is looked up, as the HTTP contract orders it.
	if req.Answers == nil {
		return invalid("answers is required (an empty list is valid)")
	}
	quizID, err := uuid.Parse(c.Param("quiz_id"))
	if err != nil {
		return notFound("quiz")
	}
	quiz, ok := s.content.Load().quizzes[quizID]
	if !ok {
		return notFound("quiz")
	}
	if quiz.exam != nil {
		return errTimedQuiz // taken through sessions (api/sessions.go)
	}
	key := c.Request().Header.Get("Idempotency-Key")
	if !utf8.ValidString(key) {
		// Stored as text, an invalid byte would become U+FFFD: the stored
		// key would no longer derive its attempt id.
		return invalid("Idempotency-Key must be UTF-8 text")
	}
	if utf8.RuneCountInString(key) > events.MaxIdempotencyKey {
		return invalid("Idempotency-Key must be at most %d characters", events.MaxIdempotencyKey)
	}
	score, err := grade(quiz, *req.Answers)
	if err != nil {
		return err
	}
	student := session(c).Student.ID
	if err := s.checkUnsettled(c.Request().Context(), student); err != nil {
		return err // 503: too many of the student's attempts unsettled (api/limits.go)
	}
	ev := events.AttemptSubmitted{
		AttemptID:      events.AttemptID(student, key),
		StudentID:      student,
		QuizID:         quiz.id,
		CourseID:       quiz.courseID,
		IdempotencyKey: key,
		Answers:        *req.Answers,
		AnswersHash:    events.HashAnswers(quiz.id, *req.Answers),
		Score:          score,
		MaxScore:       len(quiz.choices),
		SubmittedAt:    time.Now().UTC().Truncate(time.Microsecond),
	}

	if key != "" {
		// A retry may come after MaxAge removed its original from the
		// stream, whose guard would then take it for new (api/lateretry.go).
		if row, ok := s.storedAttempt(c.Request().Context(), ev); ok {
			s.metrics.publishes.WithLabelValues("stored").Inc()
			if row.QuizID != ev.QuizID || !bytes.Equal(row.AnswersHash, ev.AnswersHash) {
				return errKeyReused
			}
			return writeJSON(c, http.StatusAccepted, attemptFromRow(row))
		}
	}

	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.PublishTimeout)
	defer cancel()
	pub, err := s.events.PublishAttempt(ctx, ev)
	if eventlog.IsStreamFull(err) {
		s.metrics.publishes.WithLabelValues("full").Inc()
		s.streamFull(err)
		return errEventLogFull
	}
	if err != nil {
		s.metrics.publishes.WithLabelValues("failed").Inc()
		s.log.Debug("api: publish failed", "attempt_id", ev.AttemptID, "err", err)
		return unavailable("the event log")
	}
	status := statusAccepted
	if pub.Duplicate {
		s.metrics.publishes.WithLabelValues("duplicate").Inc()
		orig := pub.Event
		if orig.StudentID != student || orig.QuizID != ev.QuizID || !bytes.Equal(orig.AnswersHash, ev.AnswersHash) {
			return errKeyReused
		}
		status = s.retryStatus(ctx, pub)
	} else {
		s.metrics.publishes.WithLabelValues("published").Inc()
	}
	e := pub.Event
	s.givePosition(c, pub.Seq)
	return writeJSON(c, http.StatusAccepted, attemptFromEvent(e, status))
}

// retryStatus is the status "as it is now" of an attempt a retry found in
// the log. The stored row says recorded or failed; it is asked for with a
// short deadline only, because the attempt POST must not depend on
// PostgreSQL: without an answer, the ack floor tells settled (recorded, as
// nearly every settled attempt is) from accepted.
func (s *Server) retryStatus(ctx context.Context, pub eventlog.Published) string {
	dbCtx, cancel := context.WithTimeout(ctx, s.cfg.RetryStatusTimeout)
	defer cancel()
	if a, err := s.store.GetAttempt(dbCtx, pub.Event.StudentID, pub.Event.AttemptID); err == nil {
		return attemptFromRow(a).Status
	}
	if floor, err := s.events.AckFloor(ctx); err == nil && pub.Seq <= floor {
		return statusRecorded
	}
	return statusAccepted
}

func attemptFromRow(a store.Attempt) attemptJSON {
	status := statusRecorded
	if a.Status == store.StatusFailed {
		status = statusFailed
	}
	return attemptJSON{
		AttemptID: a.ID, QuizID: a.QuizID, StudentID: a.StudentID,
		Score: a.Score, MaxScore: a.MaxScore, Status: status, SubmittedAt: a.SubmittedAt.UTC(),
	}
}

func attemptFromEvent(e events.AttemptSubmitted, status string) attemptJSON {
	return attemptJSON{
		AttemptID: e.AttemptID, QuizID: e.QuizID, StudentID: e.StudentID,
		Score: e.Score, MaxScore: e.MaxScore, Status: status, SubmittedAt: e.SubmittedAt.UTC(),
	}
}

// ackFloor returns the attempts consumer's ack floor as it was at most
// AckFloorMaxAge ago. Student reads take it before they query PostgreSQL:
// every event at or below it was settled before the query began, so the
// query sees it, and every event above it is read from the stream itself.
// That makes a 202 visible at once, on any instance. An older floor is only
// lower, which costs a longer look at the stream, never a missed attempt.
func (s *Server) ackFloor(ctx context.Context) (uint64, error) {
	seq, err := s.floor.get(ctx, s.events.AckFloor, s.cfg.AckFloorMaxAge)
	if err != nil {
		s.log.Debug("api: reading the ack floor failed", "err", err)
		return 0, unavailable("the event log")
	}
	return seq, nil
}

// floorCache is one consumer's ack floor, as read at most some age ago:
// every family's student reads take theirs from one.
type floorCache struct {
	last atomic.Pointer[floorReading]
	// lookups shares one lookup between the reads that find the reading
	// too old at once: one at a time, however many reads arrive.
	lookups singleflight.Group
}

// floorReading is an ack floor and when it was read.
type floorReading struct {
	seq uint64
	at  time.Time
}

// get returns the floor read at most maxAge ago, reading it with read
// when the reading is older, or read's error.
func (f *floorCache) get(ctx context.Context, read func(context.Context) (uint64, error), maxAge time.Duration) (uint64, error) {
	if r := f.last.Load(); r != nil && time.Since(r.at) < maxAge {
		return r.seq, nil
	}
	v, err, _ := f.lookups.Do("", func() (any, error) {
		at := time.Now() // before the read: the floor is at least this recent
		seq, err := read(context.WithoutCancel(ctx))
		if err == nil {
			f.last.Store(&floorReading{seq: seq, at: at})
		}
		return seq, err
	})
	if err != nil {
		return 0, err
	}
	return v.(uint64), nil
}

func (s *Server) getAttempt(c echo.Context) error {
	id, err := uuid.Parse(c.Param("attempt_id"))
	if err != nil {
		return notFound("attempt")
	}
	ctx := readContext(c)
	student := session(c).Student.ID
	floor, err := s.ackFloor(ctx)
	if err != nil {
		return err
	}
	// The read model first (api/readmodel.go), then PostgreSQL: the
	// stored attempt wins over the stream's copy. With the model on, an
	// attempt it does not hold is looked for above the floor first: there
	// it is unsettled, and answered accepted even if PostgreSQL holds it
	// already, as progress (the model's) does not count it yet.
	m, stored, ok := s.modelAttempt(ctx, student, id)
	if ok && stored {
		return writeJSON(c, http.StatusOK, m)
	}
	var pub eventlog.Published
	if s.model != nil {
		if pub, err = s.events.Attempt(ctx, student, id); err == nil && pub.Seq > floor {
			return writeJSON(c, http.StatusOK, attemptFromEvent(pub.Event, statusAccepted))
		}
	}
	if !ok {
		a, err := s.store.GetAttempt(ctx, student, id)
		if err == nil {
			return writeJSON(c, http.StatusOK, attemptFromRow(a))
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if s.model == nil {
		pub, err = s.events.Attempt(ctx, student, id)
	}
	switch {
	case errors.Is(err, eventlog.ErrNotInLog):
		return notFound("attempt")
	case err != nil:
		s.log.Warn("api: reading an attempt from the event log failed", "err", err)
		return unavailable("the event log")
	case pub.Seq > floor:
		return writeJSON(c, http.StatusOK, attemptFromEvent(pub.Event, statusAccepted))
	}
	// Settled before the query, yet not stored: a worker set it aside.
	return writeJSON(c, http.StatusOK, attemptFromEvent(pub.Event, statusFailed))
}

const (
	defaultPageSize = 20
	maxPageSize     = 100
	// maxPending bounds how many of a student's not-yet-stored attempts a
	// list reads from the stream.
	maxPending = 1000
)

// pageLimit parses a limit parameter: a whole number of at least 1,
// clamped to maxPageSize however large it is. It returns an
// invalid-request error for anything else.
// pageQuery reads a list's page: its limit (defaultPageSize without one)
// and the cursor it continues after (nil without one).
func pageQuery(c echo.Context) (limit int, after *store.Cursor, err error) {
	limit = defaultPageSize
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = pageLimit(v); err != nil {
			return 0, nil, err
		}
	}
	if v := c.QueryParam("cursor"); v != "" {
		cur, err := decodeCursor(v)
		if err != nil {
			return 0, nil, invalid("cursor is not one this API issued")
		}
		after = &cur
	}
	return limit, after, nil
}

func pageLimit(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		return maxPageSize, nil // beyond int: still a larger value, clamped
	}
	if err != nil || n < 1 {
		return 0, invalid("limit must be a whole number of at least 1")
	}
	return min(n, maxPageSize), nil
}

// before reports whether a sorts before b in the HTTP contract's order: submitted_at
// descending, then attempt_id descending.
func before(a, b attemptJSON) bool {
	if !a.SubmittedAt.Equal(b.SubmittedAt) {
		return a.SubmittedAt.After(b.SubmittedAt)
	}
	return bytes.Compare(a.AttemptID[:], b.AttemptID[:]) > 0
}

func (s *Server) listAttempts(c echo.Context) error {
	p := store.ListAttemptsParams{StudentID: session(c).Student.ID}
	var err error
	if p.Limit, p.After, err = pageQuery(c); err != nil {
		return err
	}
	if v := c.QueryParam("quiz_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil || id == uuid.Nil { // the nil UUID would mean "every quiz" to the store
			// A filter naming no quiz matches nothing.
			return writeJSON(c, http.StatusOK, attemptPage{})
		}
		p.QuizID = id
	}
	ctx := readContext(c)
	floor, err := s.ackFloor(ctx)
	if err != nil {
		return err
	}
	want := p.Limit
	p.Limit++ // one more tells whether there is a next page
	// The unsettled attempts are taken before the query: whatever settles
	// meanwhile is then in the query's rows, and nothing falls between.
	pending, err := s.events.StudentAttempts(ctx, p.StudentID, floor, maxPending)
	if err != nil {
		s.log.Debug("api: reading pending attempts from the event log failed", "err", err)
		return unavailable("the event log")
	}
	unsettled := make(map[uuid.UUID]bool, len(pending))
	for _, pub := range pending {
		unsettled[pub.Event.AttemptID] = true
	}
	rows, err := s.storedPage(ctx, p, unsettled)
	if err != nil {
		return err
	}
	if len(pending) == maxPending {
		// The newest might be beyond what was read: no page is certain.
		s.log.Warn("api: a student has too many unstored attempts to list; are the workers running?", "student_id", p.StudentID)
		return unavailable("the attempts list")
	}

	// The page is the first `want` of (this page of stored attempts, from
	// the read model or PostgreSQL) merged with
	// (the stream's attempts above the floor): any attempt of the true page
	// is in one or the other.
	out := make([]attemptJSON, 0, len(rows)+len(pending))
	stored := make(map[uuid.UUID]bool, len(rows))
	for _, a := range rows {
		stored[a.AttemptID] = true
		out = append(out, a)
	}
	var cursor attemptJSON
	if p.After != nil {
		cursor = attemptJSON{SubmittedAt: p.After.SubmittedAt, AttemptID: p.After.ID}
	}
	for _, pub := range pending {
		a := attemptFromEvent(pub.Event, statusAccepted)
		if stored[a.AttemptID] || (p.QuizID != uuid.Nil && a.QuizID != p.QuizID) ||
			(p.After != nil && !before(cursor, a)) {
			continue
		}
		stored[a.AttemptID] = true // a redriven attempt is in the stream twice
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b attemptJSON) int {
		if before(a, b) {
			return -1
		}
		return 1
	})
	var next *string
	if len(out) > want {
		out = out[:want]
		last := out[want-1]
		cur := encodeCursor(store.Cursor{SubmittedAt: last.SubmittedAt, ID: last.AttemptID})
		next = &cur
	}
	return writeJSON(c, http.StatusOK, attemptPage{out, next})
}

// A cursor is opaque to clients: base64url of "<unix microseconds>.<attempt id>".
func encodeCursor(c store.Cursor) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%s", c.SubmittedAt.UnixMicro(), c.ID))
}

func decodeCursor(s string) (store.Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.Cursor{}, err
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return store.Cursor{}, errors.New("no separator")
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return store.Cursor{}, err
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return store.Cursor{}, err
	}
	return store.Cursor{SubmittedAt: time.UnixMicro(us).UTC(), ID: u}, nil
}
