package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
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

// readyz returns the checks a /readyz answer names, by name.
func readyz(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	code, body := get(t, url)
	var b struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("GET %s: %d %q: %v", url, code, body, err)
	}
	return code, b.Checks
}

// seriesNames returns the names of the series in a Prometheus text
// exposition.
func seriesNames(body string) []string {
	var names []string
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names = append(names, line[:i])
		}
	}
	return names
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

		code, checks := readyz(t, ops+"/readyz")
		pcode, pchecks := readyz(t, in.URL+"/readyz")
		_, publicWorkers := pchecks["postgres_for_workers"]
		if code != 200 || pcode != 200 || checks["event_log"] != "ok" || pchecks["event_log"] != "ok" ||
			checks["postgres_for_workers"] != "ok" || publicWorkers {
			t.Fatalf("readyz: ops %d %v, public %d %v", code, checks, pcode, pchecks)
		}
		code, body := get(t, ops+"/metrics")
		names := seriesNames(body)
		for _, m := range []string{"quizstream_api_", "quizstream_worker_", "quizstream_stream_", "quizstream_store_", "quizstream_api_tail_events"} {
			if code != 200 || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, m) }) {
				t.Errorf("metrics: %d, no %s", code, m)
			}
		}
		if code, _ := get(t, ops+"/debug/pprof/"); (code == 200) != profiling {
			t.Errorf("profiling %v: /debug/pprof/ answered %d", profiling, code)
		}
		in.Stop()
	}
}
