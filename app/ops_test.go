package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The operations listener answers /readyz from the same checks as the
// API's public one (plus the workers' in a process that runs them), serves
// the metrics of every tier, and serves profiles only when asked to.
func TestOperationsListener(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	for _, profiling := range []bool{false, true} {
		cfg := s.Config(t)
		cfg.API, cfg.Workers, cfg.MetricsAddr, cfg.Profiling = true, 1, "127.0.0.1:0", profiling
		in := s.Start(t, cfg)
		ops := in.OpsURL()

		code, body := get(t, ops+"/readyz")
		pcode, pbody := get(t, in.URL+"/readyz")
		if code != 200 || pcode != 200 || !strings.Contains(body, `"event_log":"ok"`) || !strings.Contains(pbody, `"event_log":"ok"`) ||
			!strings.Contains(body, `"postgres_for_workers":"ok"`) || strings.Contains(pbody, "postgres_for_workers") {
			t.Fatalf("readyz: ops %d %s, public %d %s", code, body, pcode, pbody)
		}
		code, body = get(t, ops+"/metrics")
		for _, m := range []string{"quizstream_api_", "quizstream_worker_", "quizstream_stream_", "quizstream_store_", "quizstream_api_tail_events"} {
			if code != 200 || !strings.Contains(body, m) {
				t.Errorf("metrics: %d, no %s", code, m)
			}
		}
		if code, _ := get(t, ops+"/debug/pprof/"); (code == 200) != profiling {
			t.Errorf("profiling %v: /debug/pprof/ answered %d", profiling, code)
		}
		in.Stop()
	}
}
