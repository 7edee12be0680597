package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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

// The public handler answers from the same checks with the same statuses
// and names the dependency that is down, but never its error text, which
// can name hosts, users and versions; ServeHTTP keeps the detail.
func TestPublicLeavesOutErrorTexts(t *testing.T) {
	const secret = `failed to connect to user=quizstream database=prod host=10.0.0.7: password authentication failed`
	var dbErr, logErr error
	r := health.New(1,
		health.Check{Name: "event_log", Required: true, Probe: func(context.Context) error { return logErr }},
		health.Check{Name: "postgres", Probe: func(context.Context) error { return dbErr }},
	)
	public := func() (int, string, body) {
		t.Helper()
		rec := httptest.NewRecorder()
		r.Public().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var b body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatalf("decode %q: %v", rec.Body.String(), err)
		}
		return rec.Code, rec.Body.String(), b
	}
	if code, _, b := public(); code != 200 || b.Checks["event_log"] != "ok" || b.Checks["postgres"] != "ok" {
		t.Fatalf("all up: %d %+v", code, b)
	}
	dbErr = errors.New(secret)
	code, raw, b := public()
	if code != 200 || b.Checks["postgres"] != "down" || strings.Contains(raw, "10.0.0.7") || strings.Contains(raw, "password") {
		t.Fatalf("optional check down, public: %d %s", code, raw)
	}
	logErr = errors.New(secret)
	code, raw, b = public()
	if code != 503 || b.Error.Code != "unavailable" || b.Error.Message != "event_log: down" || b.Checks["event_log"] != "down" ||
		strings.Contains(raw, "10.0.0.7") || strings.Contains(raw, "password") {
		t.Fatalf("required check down, public: %d %s", code, raw)
	}
	// The operations listener's answer keeps the detail.
	if code, _, b := get(t, r); code != 503 || b.Checks["postgres"] != secret || b.Error.Message != "event_log: "+secret {
		t.Fatalf("required check down, operations: %d %+v", code, b)
	}
	logErr, dbErr = nil, nil
	r.Drain()
	if code, _, b := public(); code != 503 || b.Error.Message != "shutting down" {
		t.Fatalf("draining, public: %d %+v", code, b)
	}
}
