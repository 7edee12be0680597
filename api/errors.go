package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

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

var (
	errUnauthorized = &Error{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"}
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
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "payload_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "idempotency_key_reused",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusServiceUnavailable:    "unavailable",
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
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
		code, ok := codes[httpErr.Code]
		if !ok {
			code = "internal"
		}
		msg, _ := httpErr.Message.(string)
		if msg == "" {
			msg = http.StatusText(httpErr.Code)
		}
		e = &Error{httpErr.Code, code, msg}
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
	if e.Status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", strconv.Itoa(s.cfg.RetryAfterSeconds))
	}
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	// A HEAD gets the same headers; net/http drops the body.
	if err := c.JSON(e.Status, body); err != nil {
		s.log.Warn("api: writing error response failed", "err", err)
	}
}
