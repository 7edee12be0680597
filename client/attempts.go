package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

// SubmitOption adjusts SubmitAttempt.
type SubmitOption func(*submitOptions)

// submitBody is the attempt POST's body.
type submitBody struct {
	Answers []Answer `json:"answers"`
}

type submitOptions struct {
	key string
}

// WithIdempotencyKey makes SubmitAttempt send key (at most 128 characters)
// instead of a new random one: pass a Submission's IdempotencyKey to
// resubmit that same logical submission. An empty key is ignored. It
// cannot fail.
func WithIdempotencyKey(key string) SubmitOption {
	return func(o *submitOptions) { o.key = key }
}

// SubmitAttempt submits answers to a quiz (nil means none answered) and
// returns the graded attempt, accepted in the event log. The request
// carries one Idempotency-Key for this logical submission, picked once (a
// random UUID unless WithIdempotencyKey gives one) and sent on every try,
// so it is retried through transport errors, 503 and 429 without risk of a
// second attempt. The returned Submission holds the key even on failure.
// It returns an *Error with CodeNotFound for an unknown quiz,
// CodeInvalidRequest for an unknown question or choice,
// CodeIdempotencyKeyReused when the key was used for other answers, or the
// last error once retries gave up (the outcome is then unknown: resubmit
// with the same key to settle it).
func (c *Client) SubmitAttempt(ctx context.Context, quizID string, answers []Answer, opts ...SubmitOption) (Submission, error) {
	var o submitOptions
	for _, opt := range opts {
		opt(&o)
	}
	sub := Submission{IdempotencyKey: o.key}
	if sub.IdempotencyKey == "" {
		sub.IdempotencyKey = uuid.NewString()
	}
	if answers == nil {
		answers = []Answer{} // the API requires the field; an empty list is valid
	}
	rep, err := c.do(ctx, call{
		method:     http.MethodPost,
		path:       "/api/v1/quizzes/" + url.PathEscape(quizID) + "/attempts",
		header:     http.Header{"Idempotency-Key": {sub.IdempotencyKey}},
		body:       submitBody{Answers: answers},
		idempotent: true,
	}, &sub.Attempt)
	sub.Tries = rep.tries
	if err != nil {
		sub.Attempt = Attempt{}
		return sub, err
	}
	c.saw(rep.header)
	return sub, nil
}

// Attempt returns one of the caller's attempts, whatever its status. It
// returns an *Error with CodeNotFound when the attempt is unknown or
// another student's, or the last error once retries gave up.
func (c *Client) Attempt(ctx context.Context, attemptID string) (Attempt, error) {
	var out Attempt
	if _, err := c.do(ctx, call{
		method: http.MethodGet, path: "/api/v1/attempts/" + url.PathEscape(attemptID), header: c.readHeader(), idempotent: true,
	}, &out); err != nil {
		return Attempt{}, err
	}
	return out, nil
}

// Attempts returns one page of the caller's attempts, newest first. It
// returns an *Error with CodeInvalidRequest for a negative Limit or a
// cursor the API did not issue, or the last error once retries gave up.
func (c *Client) Attempts(ctx context.Context, q AttemptsQuery) (AttemptPage, error) {
	v := url.Values{}
	if q.QuizID != "" {
		v.Set("quiz_id", q.QuizID)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out AttemptPage
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/v1/attempts", query: v, header: c.readHeader(), idempotent: true}, &out); err != nil {
		return AttemptPage{}, err
	}
	return out, nil
}

// AllAttempts walks every page from q (q.Limit is the page size, 100 when
// 0) and returns the attempts, newest first; each page is a call with its
// own Deadline. It returns what it read before the first page that
// failed, with that page's error.
func (c *Client) AllAttempts(ctx context.Context, q AttemptsQuery) ([]Attempt, error) {
	if q.Limit == 0 {
		q.Limit = 100
	}
	var all []Attempt
	seen := map[string]bool{}
	for {
		page, err := c.Attempts(ctx, q)
		if err != nil {
			return all, err
		}
		all = append(all, page.Attempts...)
		if page.NextCursor == "" {
			return all, nil
		}
		if seen[page.NextCursor] {
			return all, fmt.Errorf("client: list attempts: the API repeated cursor %q", page.NextCursor)
		}
		seen[page.NextCursor] = true
		q.Cursor = page.NextCursor
	}
}

// Progress returns the caller's progress over every course, counting
// recorded attempts. It returns an *Error (CodeUnavailable while the
// database is down), or the last error once retries gave up.
func (c *Client) Progress(ctx context.Context) (Progress, error) {
	var out Progress
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/v1/student-progress", idempotent: true}, &out); err != nil {
		return Progress{}, err
	}
	return out, nil
}
