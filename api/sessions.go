package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
)

// Timed exams (API v1.1; docs/exams.md). A session is event-sourced like an
// attempt: its start, saves and finalization are events in the EXAMS
// stream, each answered 202 from the PubAck, each published under a
// compare-and-set on the student's sessions of the quiz (eventlog.ExamLog),
// and its deadline is a timer in the stream that a worker finalizes it
// on. Nothing here touches PostgreSQL but the student reads, which merge
// the projection with the stream above the exam writers' ack floor.

// ExamLog is what the API needs of the exams event log (eventlog.ExamLog).
type ExamLog interface {
	// Latest returns the student's latest session of the quiz (nil when
	// none) and the sequence a new session's Append expects.
	Latest(ctx context.Context, student, quiz uuid.UUID) (*events.ExamSession, uint64, error)
	// Session returns a session folded from the stream, or eventlog.ErrNoSession.
	Session(ctx context.Context, student, session uuid.UUID) (*events.ExamSession, error)
	// Refresh returns s with what was stored after it folded in.
	Refresh(ctx context.Context, s *events.ExamSession) (*events.ExamSession, error)
	// Append publishes an event if the student's sessions of its quiz are
	// still at expect, or returns eventlog.ErrExamConflict.
	Append(ctx context.Context, e events.ExamEvent, expect uint64) (uint64, error)
	// Arm durably schedules a session's timer.
	Arm(ctx context.Context, d events.ExamDue) error
	// Finalize ends s unless it has ended, and returns how it ended.
	Finalize(ctx context.Context, s *events.ExamSession, by string, at time.Time) (events.ExamFinalized, *events.ExamSession, error)
	// AckFloor returns the sequence up to which every event is in PostgreSQL.
	AckFloor(ctx context.Context) (uint64, error)
	// Events returns up to max events on subject above a sequence.
	Events(ctx context.Context, subject string, after uint64, max int) ([]eventlog.ExamMsg, error)
}

// Defaults of ExamConfig, named once: the binary's settings use them too.
const (
	DefaultExamGrace        = 30 * time.Second
	DefaultExamSettle       = 2 * time.Second
	DefaultSessionCacheSize = 100000
)

// ExamConfig configures timed exams.
type ExamConfig struct {
	// Log is the exams event log. Without it the session endpoints answer
	// 503 (a timed quiz's attempt POST still answers 409).
	Log ExamLog
	// Grace is grace_s for quizzes that set none: how long after a
	// session's deadline saves and submits still count, in whole seconds.
	// Negative means none. Defaults to 30s.
	Grace time.Duration
	// Settle is how long after deadline + grace a session's timer fires, so
	// that a save that reached the API just before deadline + grace is in
	// the stream when the deadline's finalization reads it. Negative means
	// none. Defaults to 2s.
	Settle time.Duration
	// Now is the clock deadlines are computed and enforced with. Defaults
	// to time.Now; tests set one they control.
	Now func() time.Time
	// SessionCacheSize bounds the sessions an instance keeps folded for
	// saves (a stale one costs a compare-and-set retry, never a wrong
	// answer). Defaults to 100000.
	SessionCacheSize int
}

func (c *ExamConfig) defaults() {
	switch {
	case c.Grace == 0:
		c.Grace = DefaultExamGrace
	case c.Grace < 0:
		c.Grace = 0
	}
	switch {
	case c.Settle == 0:
		c.Settle = DefaultExamSettle
	case c.Settle < 0:
		c.Settle = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SessionCacheSize <= 0 {
		c.SessionCacheSize = DefaultSessionCacheSize
	}
}

// Session states as the HTTP contract names them.
const (
	sessionOpen      = "open"
	sessionSubmitted = "submitted"
	sessionExpired   = "expired"
)

var (
	errTimedQuiz = &Error{http.StatusConflict, "conflict",
		"this quiz is timed: start a session (POST /api/v1/quizzes/{quiz_id}/sessions) and submit it"}
	errUntimedQuiz = &Error{http.StatusConflict, "conflict",
		"this quiz is not timed: submit an attempt (POST /api/v1/quizzes/{quiz_id}/attempts)"}
	errSessionClosed = &Error{http.StatusConflict, "conflict", "the session is over: it was submitted, or its deadline and grace have passed"}
)

func forbidden(format string, args ...any) *Error {
	return &Error{http.StatusForbidden, "forbidden", fmt.Sprintf(format, args...)}
}

// exams serves the session endpoints of one Server.
type exams struct {
	s     *Server
	cfg   ExamConfig
	log   ExamLog
	cache *lru.Cache[uuid.UUID, *events.ExamSession]
	// locks makes this instance's saves and submits of one session take
	// turns: they would only lose each other's compare-and-set.
	locks sessionLocks
	floor floorCache // the exam writers' consumer's
}

// newExams returns the session endpoints of s (routed in api/routes.go).
func (s *Server) newExams() *exams {
	cfg := s.cfg.Exams
	cfg.defaults()
	cache, _ := lru.New[uuid.UUID, *events.ExamSession](cfg.SessionCacheSize) // errors only for a size <= 0
	return &exams{s: s, cfg: cfg, log: cfg.Log, cache: cache, locks: sessionLocks{held: map[uuid.UUID]*sessionLock{}}}
}

// ready answers 503 when the instance has no exams log.
func (x *exams) ready() error {
	if x.log == nil {
		return unavailable("timed exams")
	}
	return nil
}

// unavailableLog is the 503 of a failed read or publish on the exams log.
func (x *exams) unavailableLog(what string, err error) error {
	x.s.log.Debug("api: exams log failed", "step", what, "err", err)
	return unavailable("the event log")
}

// start starts a session of a timed quiz, or answers the student's open
// one (or the one of the same Idempotency-Key). Nothing here touches
// PostgreSQL: the quiz is the snapshot's, the rest is in the stream.
func (x *exams) start(c echo.Context) error {
	now := x.cfg.Now()
	quizID, err := uuid.Parse(c.Param("quiz_id"))
	if err != nil {
		return notFound("quiz")
	}
	quiz, ok := x.s.content.Load().quizzes[quizID]
	if !ok {
		return notFound("quiz")
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
	rules := quiz.exam
	if rules == nil {
		return errUntimedQuiz
	}
	if err := x.ready(); err != nil {
		return err
	}
	student := session(c).Student.ID
	ctx, cancel := context.WithTimeout(c.Request().Context(), x.s.cfg.PublishTimeout)
	defer cancel()

	id := events.SessionID(student, key)
	for ctx.Err() == nil {
		if key != "" {
			switch st, err := x.log.Session(ctx, student, id); {
			case err == nil && st.Started.QuizID != quizID:
				return errKeyReused
			case err == nil:
				return x.answer(c, st, now)
			case !errors.Is(err, eventlog.ErrNoSession):
				return x.unavailableLog("read session", err)
			}
		}
		latest, last, err := x.log.Latest(ctx, student, quizID)
		if err != nil {
			return x.unavailableLog("read latest session", err)
		}
		if latest != nil && latest.Final == nil {
			return x.answer(c, latest, now) // one open session at a time
		}
		switch {
		case !rules.opensAt.IsZero() && now.Before(rules.opensAt):
			return forbidden("this exam opens at %s", rules.opensAt.UTC().Format(time.RFC3339))
		case !rules.closesAt.IsZero() && !now.Before(rules.closesAt):
			return forbidden("this exam closed at %s", rules.closesAt.UTC().Format(time.RFC3339))
		}
		number := 1
		if latest != nil {
			number = latest.Started.Number + 1
		}
		if rules.maxSessions > 0 && number > rules.maxSessions {
			return forbidden("this exam allows %d sessions, and you have started them all", rules.maxSessions)
		}
		started := x.newStart(student, id, key, number, quiz, now)
		// The timer first: a start in the stream always has its timer. A
		// timer whose start never got stored fires on no session, harmlessly.
		due := events.ExamDue{SessionID: id, StudentID: student, QuizID: quizID,
			DueAt: started.Cutoff().Add(x.cfg.Settle)}
		if err := x.log.Arm(ctx, due); err != nil {
			return x.unavailableLog("arm timer", err)
		}
		seq, err := x.log.Append(ctx, events.ExamEvent{Started: &started}, last)
		switch {
		case errors.Is(err, eventlog.ErrExamConflict):
			// Another start, or an earlier try of this one, got there
			// first: decide again on what is stored now.
			if key == "" {
				id = uuid.New()
			}
			continue
		case err != nil:
			return x.unavailableLog("publish start", err)
		}
		st := events.NewExamSession()
		st.Apply(events.ExamEvent{Started: &started}, seq)
		x.cache.Add(id, st)
		return x.answer(c, st, now)
	}
	return x.unavailableLog("start", ctx.Err())
}

// newStart returns the ExamStarted of a new session at now: its deadline
// the earlier of now + the time limit and the quiz's closing time.
func (x *exams) newStart(student, id uuid.UUID, key string, number int, quiz *quizKey, now time.Time) events.ExamStarted {
	rules := quiz.exam
	startedAt := now.UTC().Truncate(time.Microsecond)
	deadline := startedAt.Add(rules.timeLimit)
	if !rules.closesAt.IsZero() && rules.closesAt.Before(deadline) {
		deadline = rules.closesAt.UTC().Truncate(time.Microsecond)
	}
	grace := x.cfg.Grace
	if rules.grace != nil {
		grace = *rules.grace
	}
	return events.ExamStarted{
		SessionID: id, StudentID: student, QuizID: quiz.id, CourseID: quiz.courseID, IdempotencyKey: key,
		Number: number, StartedAt: startedAt, Deadline: deadline, GraceS: int(grace / time.Second),
		Questions: rules.questions,
	}
}

// answer is the 202 of a start: the session as it is now.
func (x *exams) answer(c echo.Context, st *events.ExamSession, now time.Time) error {
	return writeJSON(c, http.StatusAccepted, x.render(st, now))
}

// load returns one of the student's sessions as the save and submit paths
// start from: this instance's last folding of it, or a fresh one. A stale
// one only costs a compare-and-set retry. It returns a 404 for a session
// that is unknown or another student's.
func (x *exams) load(ctx context.Context, student, id uuid.UUID) (*events.ExamSession, error) {
	if st, ok := x.cache.Get(id); ok && st.Started.StudentID == student {
		return st, nil
	}
	st, err := x.log.Session(ctx, student, id)
	switch {
	case errors.Is(err, eventlog.ErrNoSession):
		return nil, notFound("session")
	case err != nil:
		return nil, x.unavailableLog("read session", err)
	}
	x.cache.Add(id, st)
	return st, nil
}

// lockSession is where a save and a submit start: it parses the path's
// session id, checks that timed exams are served, then locks the session
// and loads it (load) for the signed-in student, in a context bounded by
// PublishTimeout. The caller calls unlock once done. It returns a 404 for
// a malformed id and the error of ready or load, with nothing left held.
func (x *exams) lockSession(c echo.Context) (ctx context.Context, id uuid.UUID, st *events.ExamSession, unlock func(), err error) {
	if id, err = uuid.Parse(c.Param("session_id")); err != nil {
		return nil, id, nil, nil, notFound("session")
	}
	if err = x.ready(); err != nil {
		return nil, id, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), x.s.cfg.PublishTimeout)
	release := x.locks.lock(id)
	unlock = func() { release(); cancel() }
	if st, err = x.load(ctx, session(c).Student.ID, id); err != nil {
		unlock()
		return nil, id, nil, nil, err
	}
	return ctx, id, st, unlock, nil
}

// saveRequest is the body of a save. choice_id is required, and null
// clears the answer: a raw value tells absent from null.
type saveRequest struct {
	ChoiceID json.RawMessage `json:"choice_id"`
	Seq      *int64          `json:"seq"`
}

// save stores one answer of an open session: 202 with the saved answer,
// or with the stored one when it has a seq at or above this one.
func (x *exams) save(c echo.Context) error {
	now := x.cfg.Now()
	var req saveRequest
	if err := x.s.decode(c, &req); err != nil {
		return err
	}
	var choice *uuid.UUID
	var choiceText *string
	switch {
	case req.Seq == nil:
		return invalid("seq is required (a positive integer)")
	case *req.Seq < 1:
		return invalid("seq must be a positive integer")
	case len(req.ChoiceID) == 0:
		return invalid("choice_id is required (null clears the answer)")
	case string(req.ChoiceID) != "null":
		if err := json.Unmarshal(req.ChoiceID, &choiceText); err != nil {
			return invalid(`malformed JSON body: "choice_id" must be a string or null`)
		}
	}
	ctx, id, st, unlock, err := x.lockSession(c)
	if err != nil {
		return err
	}
	defer unlock()
	student := session(c).Student.ID
	questionID, err := uuid.Parse(c.Param("question_id"))
	question, ok := st.Started.Question(questionID)
	if err != nil || !ok {
		return invalid("unknown question %q", c.Param("question_id"))
	}
	if choiceText != nil {
		cid, err := uuid.Parse(*choiceText)
		if err != nil || !slices.ContainsFunc(question.Choices, func(ch events.ExamChoice) bool { return ch.ID == cid }) {
			return invalid("unknown choice %q for question %q", *choiceText, c.Param("question_id"))
		}
		choice = &cid
	}
	// Each round that loses the compare-and-set lost it to a save or a
	// final that did get stored: the session moves on, and so does this.
	for ctx.Err() == nil {
		if st.Final != nil || !now.Before(st.Started.Cutoff()) {
			return errSessionClosed
		}
		if cur, ok := st.Answers[questionID]; ok && *req.Seq <= cur.Seq {
			return writeJSON(c, http.StatusAccepted, savedAnswer(cur))
		}
		ev := events.AnswerSaved{SessionID: id, StudentID: student, QuizID: st.Started.QuizID,
			QuestionID: questionID, ChoiceID: choice, Seq: *req.Seq, SavedAt: now.UTC().Truncate(time.Microsecond)}
		seq, err := x.log.Append(ctx, events.ExamEvent{Saved: &ev}, st.LastSeq)
		switch {
		case err == nil:
			st = st.Clone()
			st.Apply(events.ExamEvent{Saved: &ev}, seq)
			x.cache.Add(id, st)
			return writeJSON(c, http.StatusAccepted, savedAnswer(ev))
		case !errors.Is(err, eventlog.ErrExamConflict):
			return x.unavailableLog("publish save", err)
		}
		// Stored meanwhile: a save from elsewhere, the finalization, or
		// this very save by an earlier try. Read on and decide again.
		if st, err = x.log.Refresh(ctx, st); err != nil {
			return x.unavailableLog("refresh session", err)
		}
		x.cache.Add(id, st)
	}
	return x.unavailableLog("save", ctx.Err())
}

// submit finalizes a session from its saved answers and answers its
// attempt; a session that has ended answers the attempt it became. A
// submit that reached the API after deadline + grace finalizes the session
// as the deadline would have.
func (x *exams) submit(c echo.Context) error {
	now := x.cfg.Now()
	ctx, id, st, unlock, err := x.lockSession(c)
	if err != nil {
		return err
	}
	defer unlock()
	by, at := events.FinalizedByStudent, now
	if !now.Before(st.Started.Cutoff()) {
		by, at = events.FinalizedByDeadline, st.Started.Deadline
	}
	final, st, err := x.log.Finalize(ctx, st, by, at)
	if err != nil {
		return x.unavailableLog("finalize", err)
	}
	x.cache.Add(id, st)
	pub, err := x.s.events.PublishAttempt(ctx, final.Attempt())
	if err != nil {
		x.s.metrics.publishes.WithLabelValues("failed").Inc()
		return x.unavailableLog("publish attempt", err)
	}
	status := statusAccepted
	if pub.Duplicate {
		x.s.metrics.publishes.WithLabelValues("duplicate").Inc()
		status = x.s.retryStatus(ctx, pub)
	} else {
		x.s.metrics.publishes.WithLabelValues("published").Inc()
	}
	x.s.givePosition(c, pub.Seq)
	return writeJSON(c, http.StatusAccepted, attemptFromEvent(pub.Event, status))
}

// ackFloor is Server.ackFloor for the exam writers' consumer.
func (x *exams) ackFloor(ctx context.Context) (uint64, error) {
	seq, err := x.floor.get(ctx, x.log.AckFloor, x.s.cfg.AckFloorMaxAge)
	if err != nil {
		return 0, x.unavailableLog("ack floor", err)
	}
	return seq, nil
}

// get answers one of the student's sessions, read as attempts are: the ack
// floor first, then the read model (or PostgreSQL), then the session's
// events above the floor,
// folded together (the highest seq of each question winning, as in the
// projection). A 202 is thus visible at once, on any instance.
func (x *exams) get(c echo.Context) error {
	now := x.cfg.Now()
	id, err := uuid.Parse(c.Param("session_id"))
	if err != nil {
		return notFound("session")
	}
	if err := x.ready(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	student := session(c).Student.ID
	floor, err := x.ackFloor(ctx)
	if err != nil {
		return err
	}
	st, err := x.storedSession(ctx, student, id)
	if err != nil {
		return err
	}
	msgs, err := x.log.Events(ctx, events.ExamSessionSubjects(student, id), floor, maxPending)
	if err != nil {
		return x.unavailableLog("read session events", err)
	}
	for _, m := range msgs {
		st.Apply(m.Event, m.Seq)
	}
	if st.Started == nil {
		return notFound("session")
	}
	return writeJSON(c, http.StatusOK, x.render(st, now))
}

// list answers the student's sessions (of one quiz with quiz_id), newest
// first, read as get reads one.
func (x *exams) list(c echo.Context) error {
	now := x.cfg.Now()
	if err := x.ready(); err != nil {
		return err
	}
	student := session(c).Student.ID
	quizID := uuid.Nil
	subject := events.ExamStudentSubjects(student)
	if v := c.QueryParam("quiz_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil || id == uuid.Nil {
			return writeJSON(c, http.StatusOK, map[string]any{"sessions": []sessionJSON{}})
		}
		quizID, subject = id, events.ExamQuizSubjects(student, id)
	}
	ctx := c.Request().Context()
	floor, err := x.ackFloor(ctx)
	if err != nil {
		return err
	}
	// The events above the floor are read before the stored sessions, as
	// for attempts: what settles meanwhile is then in those.
	msgs, err := x.log.Events(ctx, subject, floor, maxPending)
	if err != nil {
		return x.unavailableLog("read session events", err)
	}
	if len(msgs) == maxPending {
		x.s.log.Warn("api: a student has too many unstored exam events to list; are the workers running?", "student_id", student)
		return unavailable("the sessions list")
	}
	byID, err := x.storedSessions(ctx, student, quizID)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		sid := m.Event.SessionID()
		st, ok := byID[sid]
		if !ok {
			st = events.NewExamSession()
			byID[sid] = st
		}
		st.Apply(m.Event, m.Seq)
	}
	out := make([]sessionJSON, 0, len(byID))
	for _, st := range byID {
		if st.Started != nil {
			out = append(out, x.render(st, now))
		}
	}
	slices.SortFunc(out, func(a, b sessionJSON) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.SessionID[:], a.SessionID[:])
	})
	return writeJSON(c, http.StatusOK, map[string]any{"sessions": out})
}
