package checks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// TestBadChecks: every bad input gets API.md's answer and publishes
// nothing; a check is its owner's alone; without CHECKER_URL a request is
// kept queued and the checker role's /readyz says why.
func TestBadChecks(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	cc := checksConfig(0)
	cfg := s.Config(t)
	cfg.API, cfg.Workers, cfg.Checks, cfg.MetricsAddr = true, 1, cc, "127.0.0.1:0"
	cfg.Checker.Run, cfg.Checker.Runner = true, worker.CheckerConfig{} // no CHECKER_URL
	a := s.Start(t, cfg)
	owner := apptest.Signup(t, a.URL, "owner@example.com")
	other := apptest.Signup(t, a.URL, "other@example.com")
	path := "/api/v1/exercises/" + sumID + "/checks"
	hello := "/api/v1/exercises/" + store.DemoExerciseHelloID.String() + "/checks"
	ok := map[string]string{"language": "python", "source": "print(3)\n"}
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		raw    string
		status int
		code   string
	}{
		{"source over 64 KiB", path, map[string]string{"language": "python", "source": strings.Repeat("x", 64<<10+1)}, "", 413, "payload_too_large"},
		{"unknown language", path, map[string]string{"language": "cobol", "source": "x"}, "", 400, "invalid_request"},
		{"disallowed language", hello, map[string]string{"language": "go", "source": "package main"}, "", 400, "invalid_request"},
		{"malformed body", path, nil, `{"language": "python", "source": `, 400, "invalid_request"},
		{"no source", path, map[string]string{"language": "python"}, "", 400, "invalid_request"},
		{"empty source", path, map[string]string{"language": "python", "source": " \n"}, "", 400, "invalid_request"},
		{"unknown exercise", "/api/v1/exercises/00000000-0000-4000-8000-000000000000/checks", ok, "", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r apptest.Response
			if tc.raw != "" {
				r = apptest.Do(t, owner, http.MethodPost, tc.path, http.Header{"Content-Type": {"application/json"}}, strings.NewReader(tc.raw))
			} else {
				r = apptest.PostJSON(t, owner, tc.path, nil, tc.body)
			}
			apptest.CheckError(t, tc.name, r, tc.status, tc.code)
			if n := streamMsgs(t, s); n != 0 {
				t.Fatalf("%d events in the stream after a bad input, want none", n)
			}
		})
	}
	// A check, then the same key with another program: 422, nothing more published.
	key := http.Header{"Idempotency-Key": {"bad-1"}}
	r := apptest.PostJSON(t, owner, path, key, ok)
	if r.Status != http.StatusAccepted {
		t.Fatalf("a good check: %d %s", r.Status, r.Body)
	}
	var chk struct {
		CheckID string `json:"check_id"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(r.Body, &chk); err != nil || chk.Status != "queued" {
		t.Fatalf("202 body %s: %v", r.Body, err)
	}
	r = apptest.PostJSON(t, owner, path, key, map[string]string{"language": "python", "source": "print(4)\n"})
	apptest.CheckError(t, "same key, other source", r, 422, "idempotency_key_reused")
	r = apptest.PostJSON(t, owner, path, key, map[string]string{"language": "go", "source": "print(3)\n"})
	apptest.CheckError(t, "same key, other language", r, 422, "idempotency_key_reused")
	if n := streamMsgs(t, s); n != 1 {
		t.Fatalf("%d events in the stream, want the one request", n)
	}
	// Another student's check is not found; its owner reads it queued, also once stored.
	apptest.CheckError(t, "another student's check", apptest.Get(t, other, "/api/v1/checks/"+chk.CheckID, nil), 404, "not_found")
	got, err := owner.CheckByID(t.Context(), chk.CheckID)
	if err != nil || got.Status != "queued" {
		t.Fatalf("owner's check: %+v, %v", got, err)
	}
	apptest.WaitFor(t, 20*time.Second, "the check to be stored", func() bool { return len(statuses(t, s)) == 1 })
	page, err := owner.Checks(t.Context(), checksQuery(sumID))
	if err != nil || len(page.Checks) != 1 || page.Checks[0].Status != "queued" {
		t.Fatalf("owner's list: %+v, %v", page, err)
	}
	if page, err := other.Checks(t.Context(), checksQuery("")); err != nil || len(page.Checks) != 0 {
		t.Fatalf("the other student's list: %+v, %v", page, err)
	}
	// The checker role without CHECKER_URL is not ready, and says why.
	resp, err := http.Get(a.OpsURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "CHECKER_URL") {
		t.Fatalf("checker /readyz without CHECKER_URL: %d %s", resp.StatusCode, body)
	}
}
