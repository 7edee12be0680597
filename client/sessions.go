package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
)

// Timed exams (API v1.1): a timed quiz is taken through a session, whose
// answers are saved one at a time (autosave) and which ends by a submit or
// at its deadline.

// Session states, as the HTTP contract names them.
const (
	// SessionOpen: answers may be saved until Deadline + GraceS.
	SessionOpen = "open"
	// SessionSubmitted: the student submitted it; AttemptID is its attempt.
	SessionSubmitted = "submitted"
	// SessionExpired: it was finalized at its deadline from its saved answers.
	SessionExpired = "expired"
)

// Session is one sitting of a timed quiz.
type Session struct {
	SessionID string    `json:"session_id"`
	QuizID    string    `json:"quiz_id"`
	StudentID string    `json:"student_id"`
	StartedAt time.Time `json:"started_at"`
	// Deadline is the server's: the earlier of StartedAt + the time limit
	// and the quiz's closing time.
	Deadline time.Time `json:"deadline"`
	// GraceS is how many seconds after Deadline a save or submit that
	// reaches the API still counts.
	GraceS int `json:"grace_s"`
	// State is SessionOpen, SessionSubmitted or SessionExpired.
	State string `json:"state"`
	// Answers holds the winning save of each question saved (the highest seq).
	Answers []SavedAnswer `json:"answers"`
	// AttemptID is the attempt the session became; "" while it is open.
	AttemptID string `json:"attempt_id"`
	// ServerTime is the API's clock when it answered.
	ServerTime time.Time `json:"server_time"`
}

// Remaining returns how long the session had left when the API answered,
// by the API's clock (never the caller's): 0 once the deadline passed.
func (s Session) Remaining() time.Duration { return max(s.Deadline.Sub(s.ServerTime), 0) }

// SavedAnswer is a session's answer to one question.
type SavedAnswer struct {
	QuestionID string `json:"question_id"`
	// ChoiceID is nil for a cleared answer.
	ChoiceID *string   `json:"choice_id"`
	Seq      int64     `json:"seq"`
	SavedAt  time.Time `json:"saved_at"`
}

// StartSession starts a session of a timed quiz, or returns the caller's
// open session of it (a student has one open session of a quiz at a
// time). The request carries one Idempotency-Key, picked once (a random
// UUID unless WithIdempotencyKey gives one) and sent on every try, so it
// is retried through transport errors, 503 and 429: the same key always
// returns the same session. It returns an *Error with CodeNotFound for an
// unknown quiz, CodeConflict for a quiz that is not timed, CodeForbidden
// outside the quiz's opening hours or past its sessions limit,
// CodeIdempotencyKeyReused for a key used for another quiz, or the last
// error once retries gave up.
func (c *Client) StartSession(ctx context.Context, quizID string, opts ...SubmitOption) (Session, error) {
	var o submitOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.key == "" {
		o.key = uuid.NewString()
	}
	var out Session
	_, err := c.do(ctx, call{
		method:     http.MethodPost,
		path:       "/api/v1/quizzes/" + url.PathEscape(quizID) + "/sessions",
		header:     http.Header{"Idempotency-Key": {o.key}},
		idempotent: true,
	}, &out)
	if err != nil {
		return Session{}, err
	}
	return out, nil
}

// Session returns one of the caller's sessions as it is now, every
// accepted save included. It returns an *Error with CodeNotFound when the
// session is unknown or another student's, or the last error once retries
// gave up.
func (c *Client) Session(ctx context.Context, sessionID string) (Session, error) {
	var out Session
	if _, err := c.do(ctx, call{
		method: http.MethodGet, path: "/api/v1/sessions/" + url.PathEscape(sessionID), idempotent: true,
	}, &out); err != nil {
		return Session{}, err
	}
	return out, nil
}

// Sessions returns the caller's sessions, of one quiz unless quizID is "",
// newest first. It returns an *Error, or the last error once retries gave up.
func (c *Client) Sessions(ctx context.Context, quizID string) ([]Session, error) {
	v := url.Values{}
	if quizID != "" {
		v.Set("quiz_id", quizID)
	}
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/v1/sessions", query: v, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Sessions, nil
}

// saveBody is a save's body: choice_id is always sent, null to clear.
type saveBody struct {
	ChoiceID *string `json:"choice_id"`
	Seq      int64   `json:"seq"`
}

// SaveAnswer saves the caller's answer to one question of an open session:
// choiceID, or none (nil) to clear it. seq is the caller's counter for the
// session (positive, increasing with each save): of a question's saves the
// highest seq wins whatever order they arrive in, so a save is retried
// safely, and one whose seq is at or below the stored one returns the
// stored answer and changes nothing. It returns an *Error with
// CodeNotFound for an unknown session, CodeInvalidRequest for an unknown
// question or choice, CodeConflict once the session was submitted or its
// deadline and grace passed, or the last error once retries gave up.
func (c *Client) SaveAnswer(ctx context.Context, sessionID, questionID string, choiceID *string, seq int64) (SavedAnswer, error) {
	var out SavedAnswer
	if _, err := c.do(ctx, call{
		method:     http.MethodPut,
		path:       "/api/v1/sessions/" + url.PathEscape(sessionID) + "/answers/" + url.PathEscape(questionID),
		body:       saveBody{ChoiceID: choiceID, Seq: seq},
		idempotent: true,
	}, &out); err != nil {
		return SavedAnswer{}, err
	}
	return out, nil
}

// SubmitSession finalizes a session from its saved answers and returns
// the graded attempt it became. It is idempotent (every later submit, and
// one after the deadline, returns the same attempt), so it is retried
// through transport errors, 503 and 429. It returns an *Error with
// CodeNotFound for an unknown session, or the last error once retries
// gave up.
func (c *Client) SubmitSession(ctx context.Context, sessionID string) (Attempt, error) {
	var out Attempt
	rep, err := c.do(ctx, call{
		method: http.MethodPost, path: "/api/v1/sessions/" + url.PathEscape(sessionID) + "/submit", idempotent: true,
	}, &out)
	if err != nil {
		return Attempt{}, err
	}
	c.saw(rep.header)
	return out, nil
}
