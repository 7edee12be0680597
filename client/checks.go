package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

// Check is a code check of a program (v1.1): queued until a checker takes
// it, running, then passed, failed or error (submit again).
type Check struct {
	CheckID     string      `json:"check_id"`
	ExerciseID  string      `json:"exercise_id"`
	StudentID   string      `json:"student_id"`
	Language    string      `json:"language"`
	Status      string      `json:"status"`
	SubmittedAt string      `json:"submitted_at"`
	FinishedAt  *string     `json:"finished_at"`
	Tests       []CheckTest `json:"tests"`
	Output      string      `json:"output"`
}

// Final reports whether the check has its verdict.
func (c Check) Final() bool {
	return c.Status == "passed" || c.Status == "failed" || c.Status == "error"
}

// CheckTest is one test case's outcome.
type CheckTest struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	TimeMS int64  `json:"time_ms"`
}

// CheckSubmission is a submitted check and the Idempotency-Key it was
// sent with (also on failure: resubmit with it to settle the outcome).
type CheckSubmission struct {
	Check
	IdempotencyKey string
	Tries          int
}

// ChecksQuery selects a page of the caller's checks.
type ChecksQuery struct {
	ExerciseID string
	Limit      int
	Cursor     string
}

// CheckPage is a page of checks; NextCursor is "" on the last.
type CheckPage struct {
	Checks     []Check `json:"checks"`
	NextCursor string  `json:"next_cursor"`
}

type checkBody struct {
	Language string `json:"language"`
	Source   string `json:"source"`
}

// SubmitCheck submits a program to be checked against an exercise's test
// cases and returns the check, queued in the event log. Like
// SubmitAttempt it sends one Idempotency-Key on every try (WithIdempotencyKey
// picks it), so it is retried through transport errors, 503 and 429
// without risk of a second check. It returns an *Error with
// CodePayloadTooLarge for a source over 64 KiB, CodeInvalidRequest for a
// language the exercise does not allow, CodeNotFound for an unknown
// exercise, CodeIdempotencyKeyReused when the key was used for another
// program, or the last error once retries gave up.
func (c *Client) SubmitCheck(ctx context.Context, exerciseID, language, source string, opts ...SubmitOption) (CheckSubmission, error) {
	var o submitOptions
	for _, opt := range opts {
		opt(&o)
	}
	sub := CheckSubmission{IdempotencyKey: o.key}
	if sub.IdempotencyKey == "" {
		sub.IdempotencyKey = uuid.NewString()
	}
	rep, err := c.do(ctx, call{
		method:     http.MethodPost,
		path:       "/api/v1/exercises/" + url.PathEscape(exerciseID) + "/checks",
		header:     http.Header{"Idempotency-Key": {sub.IdempotencyKey}},
		body:       checkBody{Language: language, Source: source},
		idempotent: true,
	}, &sub.Check)
	sub.Tries = rep.tries
	if err != nil {
		sub.Check = Check{}
	}
	return sub, err
}

// CheckByID returns one of the caller's checks, whatever its status. It
// returns an *Error with CodeNotFound when the check is unknown or
// another student's, or the last error once retries gave up.
func (c *Client) CheckByID(ctx context.Context, checkID string) (Check, error) {
	var out Check
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/v1/checks/" + url.PathEscape(checkID), idempotent: true}, &out); err != nil {
		return Check{}, err
	}
	return out, nil
}

// Checks returns one page of the caller's checks, newest first.
func (c *Client) Checks(ctx context.Context, q ChecksQuery) (CheckPage, error) {
	v := url.Values{}
	if q.ExerciseID != "" {
		v.Set("exercise_id", q.ExerciseID)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out struct {
		Checks     []Check `json:"checks"`
		NextCursor *string `json:"next_cursor"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/v1/checks", query: v, idempotent: true}, &out); err != nil {
		return CheckPage{}, err
	}
	page := CheckPage{Checks: out.Checks}
	if out.NextCursor != nil {
		page.NextCursor = *out.NextCursor
	}
	return page, nil
}
