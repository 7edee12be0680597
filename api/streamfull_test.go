package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// records is a slog handler that keeps every record, for tests that must
// see that something was logged at a level (not how it was worded).
type records struct {
	mu   sync.Mutex
	recs []slog.Record
	next slog.Handler
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	if rec.Level >= slog.LevelWarn {
		return r.next.Handle(ctx, rec)
	}
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// errors returns the messages logged at level Error whose message starts with prefix.
func (r *records) errors(prefix string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.recs {
		if rec.Level == slog.LevelError && strings.HasPrefix(rec.Message, prefix) {
			out = append(out, rec)
		}
	}
	return out
}

// A stream that fills is visible before and when it bites: its fill
// ratio rises on /metrics; once full, the attempt POST it refuses is a 503
// that says the log is full (not that it is down), an error is logged,
// and /readyz takes the instance out of rotation naming the capacity,
// with the figures on the operations listener.
func TestStreamFull(t *testing.T) {
	t.Parallel()
	const limit = 6
	s := apptest.New(t, streams.StreamConfig{MaxMsgs: limit})
	logs := &records{next: apptest.Logger(t).Handler()}
	cfg := s.Config(t)
	cfg.API, cfg.MetricsAddr, cfg.Logger = true, "127.0.0.1:0", slog.New(logs)
	a := s.Start(t, cfg)
	c := apptest.Signup(t, a.URL, "full@example.com")
	anon := apptest.Client(a.URL)
	ops := &http.Client{Timeout: 5 * time.Second}
	metric := func(name string) float64 {
		t.Helper()
		resp, err := ops.Get(a.OpsURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			// A stream metric's series of the attempts stream, or name itself.
			v, ok := strings.CutPrefix(line, name+`{family="attempts",stream="ATTEMPTS"} `)
			if !ok {
				v, ok = strings.CutPrefix(line, name+" ")
			}
			if ok {
				var f float64
				if err := json.Unmarshal([]byte(v), &f); err == nil {
					return f
				}
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	q := s.Quizzes[0]
	path := "/api/v1/quizzes/" + q.ID.String() + "/attempts"
	for i := range limit - 1 {
		if _, err := apptest.Submit(t.Context(), c, q.ID.String(), "k"+string(rune('a'+i)), apptest.AnswersFor(q, 3)); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	if f := metric("quizstream_stream_fill_ratio"); f != float64(limit-1)/limit {
		t.Errorf("fill ratio before full: %v, want %v", f, float64(limit-1)/limit)
	}
	if r := apptest.Get(t, anon, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("/readyz with room for one more: %d %s", r.Status, r.Body)
	}
	if _, err := apptest.Submit(t.Context(), c, q.ID.String(), "last", apptest.AnswersFor(q, 3)); err != nil {
		t.Fatalf("the last attempt that fits: %v", err)
	}
	full := time.Now()

	// Full: out of rotation at the next probe.
	r := apptest.Get(t, anon, "/readyz", nil)
	detected := time.Since(full)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "event_log_capacity") {
		t.Fatalf("/readyz of a full stream: %d %s, want 503 naming event_log_capacity", r.Status, r.Body)
	}
	t.Logf("a full stream took the instance out of rotation %s after the publish that filled it (one /readyz probe)", detected)
	resp, err := ops.Get(a.OpsURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "the event log is full") {
		t.Errorf("operations /readyz of a full stream: %d %s, want 503 saying it is full", resp.StatusCode, body)
	}
	if f, full := metric("quizstream_stream_fill_ratio"), metric("quizstream_stream_full"); f != 1 || full != 1 {
		t.Errorf("fill ratio %v, full %v; want 1 and 1", f, full)
	}

	refused := apptest.PostJSON(t, c, path, http.Header{"Idempotency-Key": {"refused"}}, map[string]any{"answers": apptest.AnswersFor(q, 3)})
	apptest.CheckError(t, "an attempt into a full stream", refused, http.StatusServiceUnavailable, "unavailable")
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if err := json.Unmarshal(refused.Body, &e); err != nil || !strings.Contains(e.Error.Message, "full") {
		t.Errorf("the 503 of a full stream does not say so: %s", refused.Body)
	}
	if got := logs.errors("api: the event log is full"); len(got) != 1 {
		t.Errorf("%d error records for the full stream, want 1", len(got))
	}
	if n := metric(`quizstream_api_attempt_publishes_total{result="full"}`); n != 1 {
		t.Errorf("publishes refused as full: %v, want 1", n)
	}
	// Content does not need room in the stream.
	apptest.ExpectStatus(t, "GET /courses with the stream full", http.StatusOK, func(ctx context.Context) error {
		_, _, err := anon.Courses(ctx)
		return err
	})
}
