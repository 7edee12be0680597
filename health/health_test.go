package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/quizstream/quizstream/health"
)

type body struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Error  struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func get(t *testing.T, r *health.Readiness) (int, http.Header, body) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var b body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	return rec.Code, rec.Header(), b
}

func TestReadiness(t *testing.T) {
	var dbErr, logErr error
	r := health.New(2,
		health.Check{Name: "event_log", Required: true, Probe: func(context.Context) error { return logErr }},
		health.Check{Name: "postgres", Probe: func(context.Context) error { return dbErr }},
	)
	if code, _, b := get(t, r); code != 200 || b.Status != "ready" || b.Checks["postgres"] != "ok" {
		t.Fatalf("all up: %d %+v", code, b)
	}
	dbErr = errors.New("connection refused")
	if code, _, b := get(t, r); code != 200 || b.Checks["postgres"] != "connection refused" {
		t.Fatalf("an optional check down keeps the process ready and is reported: %d %+v", code, b)
	}
	logErr = errors.New("no responders")
	code, h, b := get(t, r)
	if code != 503 || h.Get("Retry-After") != "2" || b.Error.Code != "unavailable" || b.Error.Message != "event_log: no responders" {
		t.Fatalf("a required check down: %d %v %+v", code, h, b)
	}
	logErr = nil
	worker := r.With(health.Check{Name: "postgres_required", Required: true, Probe: func(context.Context) error { return dbErr }})
	if code, _, _ := get(t, worker); code != 503 {
		t.Fatalf("With adds required checks: %d", code)
	}
	r.Drain()
	if code, _, b := get(t, r); code != 503 || b.Error.Message != "shutting down" {
		t.Fatalf("draining: %d %+v", code, b)
	}
}
