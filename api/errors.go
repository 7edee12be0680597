package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/store"
)

// Error is an error with its HTTP status and machine code, rendered as
// the HTTP contract's error body. Handlers return it; only errorHandler renders it.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func invalid(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

// retryLater is an error answered with Retry-After: after seconds (at
// least 1), for a 429 whose wait the limit knows.
type retryLater struct {
	err   *Error
	after int
}

func (r *retryLater) Error() string { return r.err.Error() }
func (r *retryLater) Unwrap() error { return r.err }

var (
	errUnauthorized = &Error{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"}
	errReadTimeout  = &Error{http.StatusRequestTimeout, "request_timeout", "the request body did not arrive in time"}
	errTooLarge     = &Error{http.StatusRequestEntityTooLarge, "payload_too_large", "the request body is over the limit"}
	errMediaType    = &Error{http.StatusUnsupportedMediaType, "unsupported_media_type", "the request body must be application/json"}
	errKeyReused    = &Error{http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for a different submission"}
)

func notFound(what string) *Error {
	return &Error{http.StatusNotFound, "not_found", what + " not found"}
}

func unavailable(what string) *Error {
	return &Error{http.StatusServiceUnavailable, "unavailable", what + " is unavailable; retry shortly"}
}

// codes maps the statuses the framework raises by itself to the HTTP contract's codes.
var codes = map[int]string{
	http.StatusBadRequest:            "invalid_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestTimeout:        "request_timeout",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "payload_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "idempotency_key_reused",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusInternalServerError:   "internal",
	http.StatusServiceUnavailable:    "unavailable",

	http.StatusRequestHeaderFieldsTooLarge: "headers_too_large",
}

// frameworkCode is the machine code of a status the framework or net/http
// raised: the HTTP contract's, else the status text in snake case.
func frameworkCode(status int) string {
	if code, ok := codes[status]; ok {
		return code
	}
	if http.StatusText(status) == "" {
		return "internal"
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorJSON(code, message string) errorBody {
	var body errorBody
	body.Error.Code, body.Error.Message = code, message
	return body
}

// errorHandler is the one place errors become status codes and bodies.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		apiErr  *Error
		httpErr *echo.HTTPError
		e       *Error
	)
	switch {
	case errors.As(err, &apiErr):
		e = apiErr
	case errors.As(err, &httpErr):
		code := frameworkCode(httpErr.Code)
		msg, _ := httpErr.Message.(string)
		if msg == "" {
			msg = http.StatusText(httpErr.Code)
		}
		e = &Error{httpErr.Code, code, msg}
	case errors.Is(err, store.ErrInvalid):
		// Validation should have caught it; PostgreSQL refusing a value is
		// still the request's fault, never a 500.
		e = invalid("the request holds a value that cannot be stored")
	case timedOut(c, err):
		e = &Error{http.StatusServiceUnavailable, "unavailable", "the request took too long; retry shortly"}
	case errors.Is(err, store.ErrUnavailable):
		e = unavailable("the database")
	case errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil:
		// The client went away; nobody reads this answer.
		e = &Error{http.StatusServiceUnavailable, "unavailable", "the request was cancelled"}
	default:
		e = &Error{http.StatusInternalServerError, "internal", "internal error"}
	}
	switch {
	case e.Status == http.StatusServiceUnavailable:
		// Expected during an outage and counted by the metrics; one line a
		// request would flood the log.
		s.log.Debug("api: dependency unavailable", "route", c.Path(), "err", err)
	case e.Status >= 500:
		s.log.Error("api: request failed", "method", c.Request().Method, "route", c.Path(), "status", e.Status, "err", err)
	}
	h := c.Response().Header()
	var later *retryLater
	switch {
	case errors.As(err, &later):
		h.Set("Retry-After", strconv.Itoa(max(later.after, 1)))
	case e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests:
		h.Set("Retry-After", strconv.Itoa(s.cfg.RetryAfterSeconds))
	case e.Status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", "Bearer") // RFC 6750
	}
	// A HEAD gets the same headers; net/http drops the body.
	if err := writeJSON(c, e.Status, errorJSON(e.Code, e.Message)); err != nil {
		s.log.Warn("api: writing error response failed", "err", err)
	}
}
