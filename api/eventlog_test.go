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
	if r := apptest.Get(t, anon, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("/readyz while the log is up: %d %s", r.Status, r.Body)
	}

	s.NATS.Shutdown()
	s.NATS.WaitForShutdown()

	path := "/api/v1/quizzes/" + q.ID.String() + "/attempts"
	during := http.Header{"Idempotency-Key": {"during"}}
	start := time.Now()
	r := apptest.PostJSON(t, c, path, during, map[string]any{"answers": apptest.AnswersFor(q, 4)})
	took := time.Since(start)
	apptest.CheckError(t, "submit with the log down", r, http.StatusServiceUnavailable, "unavailable")
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("submit with the log down: Retry-After %q, want whole seconds", r.Header.Get("Retry-After"))
	}
	if took > 5*time.Second {
		t.Errorf("the 503 took %s with a 1s publish timeout", took)
	}
	// A retry with the same key while the log is down is still a clear 503.
	if r := apptest.PostJSON(t, c, path, during, map[string]any{"answers": apptest.AnswersFor(q, 4)}); r.Status != http.StatusServiceUnavailable {
		t.Errorf("retry with the log down: %d %s", r.Status, r.Body)
	}

	ready := apptest.Get(t, anon, "/readyz", nil)
	if ready.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the log down: %d %s, want 503", ready.Status, ready.Body)
	}
	if n, err := strconv.Atoi(ready.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("/readyz with the log down: Retry-After %q, want whole seconds", ready.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(ready.Body), "event_log") {
		t.Errorf("/readyz with the log down does not say which dependency is down: %s", ready.Body)
	}
	if r := apptest.Get(t, anon, "/livez", nil); r.Status != http.StatusOK {
		t.Errorf("/livez with the log down: %d", r.Status)
	}
	// Content and bad input do not need the log.
	apptest.ExpectStatus(t, "GET /courses with the log down", http.StatusOK, func(ctx context.Context) error {
		_, _, err := anon.Courses(ctx)
		return err
	})
	r = apptest.PostJSON(t, c, "/api/v1/quizzes/"+uuid.NewString()+"/attempts", nil, map[string]any{"answers": []any{}})
	apptest.CheckError(t, "unknown quiz with the log down", r, 404, "not_found")
}
