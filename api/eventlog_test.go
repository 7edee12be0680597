package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// With the event log down an attempt POST is a quick, clear 503 with a
// Retry-After, /readyz says which dependency is down, and what does not
// need the log still works. The 503s are read through Do, which never
// retries.
func TestEventLogDown(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{PublishTimeout: time.Second})
	clients, _ := apptest.SignupMany(t, a.URL, "down", 1)
	c := clients[0]
	anon := apptest.Client(a.URL)
	q := s.Quizzes[0]
	if _, err := apptest.Submit(t.Context(), c, q.ID.String(), "before", apptest.AnswersFor(q, 2)); err != nil {
		t.Fatalf("submit while the log is up: %v", err)
	}
	if r := get(t, anon, "/readyz", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz while the log is up: %d %s", r.status, r.body)
	}

	s.NATS.Shutdown()
	s.NATS.WaitForShutdown()

	path := "/api/v1/quizzes/" + q.ID.String() + "/attempts"
	during := http.Header{"Idempotency-Key": {"during"}}
	start := time.Now()
	r := postJSON(t, c, path, during, map[string]any{"answers": apptest.AnswersFor(q, 4)})
	took := time.Since(start)
	checkError(t, "submit with the log down", r, http.StatusServiceUnavailable, "unavailable")
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("submit with the log down: Retry-After %q, want whole seconds", r.header.Get("Retry-After"))
	}
	if took > 5*time.Second {
		t.Errorf("the 503 took %s with a 1s publish timeout", took)
	}
	// A retry with the same key while the log is down is still a clear 503.
	if r := postJSON(t, c, path, during, map[string]any{"answers": apptest.AnswersFor(q, 4)}); r.status != http.StatusServiceUnavailable {
		t.Errorf("retry with the log down: %d %s", r.status, r.body)
	}

	ready := get(t, anon, "/readyz", nil)
	if ready.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the log down: %d %s, want 503", ready.status, ready.body)
	}
	if n, err := strconv.Atoi(ready.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("/readyz with the log down: Retry-After %q, want whole seconds", ready.header.Get("Retry-After"))
	}
	if !strings.Contains(string(ready.body), "event_log") {
		t.Errorf("/readyz with the log down does not say which dependency is down: %s", ready.body)
	}
	if r := get(t, anon, "/livez", nil); r.status != http.StatusOK {
		t.Errorf("/livez with the log down: %d", r.status)
	}
	// Content and bad input do not need the log.
	expect(t, "GET /courses with the log down", http.StatusOK, func(ctx context.Context) error {
		_, _, err := anon.Courses(ctx)
		return err
	})
	r = postJSON(t, c, "/api/v1/quizzes/"+uuid.NewString()+"/attempts", nil, map[string]any{"answers": []any{}})
	checkError(t, "unknown quiz with the log down", r, 404, "not_found")
}
