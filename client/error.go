package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The machine codes of the HTTP contract's error body, for IsCode.
const (
	CodeInvalidRequest       = "invalid_request"        // 400
	CodeUnauthorized         = "unauthorized"           // 401
	CodeForbidden            = "forbidden"              // 403
	CodeNotFound             = "not_found"              // 404
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeConflict             = "conflict"               // 409
	CodePayloadTooLarge      = "payload_too_large"      // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeIdempotencyKeyReused = "idempotency_key_reused" // 422
	CodeRateLimited          = "rate_limited"           // 429
	CodeInternal             = "internal"               // 500
	CodeUnavailable          = "unavailable"            // 503
)

// Error is an answer of the API with a status of 400 or more, decoded from
// its body {"error": {"code", "message"}}. It satisfies retry.RetryAfterer.
// Methods may return it wrapped (after a retry gave up at the deadline):
// use errors.As or IsCode, not a type assertion.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the machine code (one of the Code constants), or "" when the
	// body was not the HTTP contract's error shape (a proxy's page, say).
	Code string
	// Message is the human text, or the start of a body that was not JSON.
	Message string
	// RetryAfterDelay is the response's Retry-After, 0 when it had none.
	RetryAfterDelay time.Duration
}

// Error returns the status, code and message; it cannot fail.
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("quizstream: %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("quizstream: %d %s: %s", e.Status, e.Code, e.Message)
}

// RetryAfter returns how long the server asked to wait before a retry, or
// 0 when it did not say.
func (e *Error) RetryAfter() time.Duration { return e.RetryAfterDelay }

// IsCode reports whether err is, or wraps, an *Error with the given code;
// it returns false for any other error, nil included.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// StatusOf returns the HTTP status of the *Error err is or wraps, or 0 when
// err is no API answer (a transport error, nil).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// ErrorOf returns the *Error of a response of status 400 or more (as Do
// returns it: status, header, body), or nil for any other status.
func ErrorOf(status int, h http.Header, body []byte) error {
	if status < 400 {
		return nil
	}
	return newError(status, h, body)
}

// newError decodes an error response.
func newError(status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status, RetryAfterDelay: parseRetryAfter(h.Get("Retry-After"), time.Now())}
	var shaped struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &shaped) == nil && shaped.Error.Code != "" {
		e.Code, e.Message = shaped.Error.Code, shaped.Error.Message
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	return e
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date (RFC
// 9110 10.2.3); it returns 0 for an absent, bad or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
