package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// pending lists quizstream_* series the dashboard or the rules use that no
// process exports yet, each with why. Empty it as they land: the test
// fails on a name listed here that the processes do export.
var pending = map[string]string{}

// eventOnly lists series that a process exports only after an event this
// test does not cause in a few seconds; they are checked against the
// metric names the source code registers instead.
var eventOnly = map[string]string{
	"quizstream_worker_batches_handed_back_total": "a batch handed back (held for MAX_BATCH_HOLD, or at shutdown)",
	"quizstream_exam_timers_total":                "an exam timer firing (deadline + grace + settle: over a minute)",
}

var seriesName = regexp.MustCompile(`\bquizstream_[a-z0-9_]+`)

// usedSeries returns every quizstream_* name the dashboard and the rules
// use, and where.
func usedSeries(t *testing.T) map[string]string {
	t.Helper()
	used := map[string]string{}
	for _, r := range rules(t) {
		for _, n := range seriesName.FindAllString(r.Expr, -1) {
			used[n] = "alert " + r.Alert
		}
	}
	raw, err := os.ReadFile("grafana/dashboards/quizstream.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range seriesName.FindAllString(tg.Expr, -1) {
				used[n] = "panel " + p.Title
			}
		}
	}
	return used
}

// scrape returns the names of the samples at url.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// Every quizstream_* series the dashboard and the alerts use is exported
// by an api or a worker process, started through the binary's wiring
// (apptest), after one of each thing the panels count: an attempt stored,
// a 429, an exam session started.
func TestSeriesExported(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	apiCfg := s.Config(t)
	apiCfg.API, apiCfg.MetricsAddr = true, "127.0.0.1:0"
	apiCfg.APIConfig = api.Config{ContentReload: -1, AttemptRate: 0.001, AttemptBurst: 3}
	apiIn := s.Start(t, apiCfg)
	workerCfg := s.Config(t)
	workerCfg.Workers, workerCfg.MetricsAddr = 1, "127.0.0.1:0"
	workerIn := s.Start(t, workerCfg)

	// A checker (code checks) on a fake Judge0.
	fake := judge0test.Start(t, judge0test.Config{})
	checkerCfg := s.Config(t)
	checkerCfg.MetricsAddr = "127.0.0.1:0"
	checkerCfg.Checker = app.CheckerConfig{Run: true, Client: checker.Config{URL: fake.URL, PollInterval: 20 * time.Millisecond}}
	checkerIn := s.Start(t, checkerCfg)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := apptest.Signup(t, apiIn.URL, "metrics@example.com")
	// A check takes from the attempt bucket too: first.
	if _, err := c.SubmitCheck(ctx, store.DemoExerciseSumID.String(), "python", "# judge0test: echo\n"); err != nil {
		t.Fatal(err)
	}
	q := s.Quizzes[0]
	var timed store.Quiz
	for _, course := range store.DemoContent(store.DefaultDemo) {
		for _, qz := range course.Quizzes {
			if qz.TimeLimit > 0 && timed.TimeLimit == 0 {
				timed = qz
			}
		}
	}
	// A session start takes from the attempt bucket too: first.
	if _, err := c.StartSession(ctx, timed.ID.String()); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"answers": apptest.AnswersFor(q, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// One attempt, sent again until the student's burst is spent: 202s,
	// then a 429.
	var statuses []int
	for len(statuses) < 5 && !slices.Contains(statuses, http.StatusTooManyRequests) {
		status, _, _, err := c.Do(ctx, http.MethodPost, "/api/v1/quizzes/"+q.ID.String()+"/attempts",
			http.Header{"Idempotency-Key": {"one"}}, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, status)
	}
	if statuses[0] != http.StatusAccepted || !slices.Contains(statuses, http.StatusTooManyRequests) {
		t.Fatalf("attempt POSTs: %v, want a 202 and then a 429", statuses)
	}
	apptest.WaitFor(t, 30*time.Second, "the attempt stored", func() bool { return s.CountAttempts(t) == 1 })

	var exported map[string]bool
	used := usedSeries(t)
	apptest.WaitFor(t, 30*time.Second, "every series the dashboard and the alerts use", func() bool {
		exported = scrape(t, apiIn.OpsURL()+"/metrics")
		for _, in := range []*apptest.Instance{workerIn, checkerIn} {
			for n := range scrape(t, in.OpsURL()+"/metrics") {
				exported[n] = true
			}
		}
		for n := range used {
			if !exported[n] && pending[n] == "" && eventOnly[n] == "" {
				return false
			}
		}
		return true
	})
	source := registeredNames(t)
	for _, n := range keys(used) {
		switch {
		case exported[n] && pending[n] != "":
			t.Errorf("%s is exported now: take it off the pending list", n)
		case exported[n]:
		case pending[n] != "":
			t.Logf("pending: %s (%s), used by %s", n, pending[n], used[n])
		case eventOnly[n] != "":
			if !source[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] {
				t.Errorf("%s (used by %s) is registered nowhere in the source", n, used[n])
			}
		default:
			t.Errorf("%s (used by %s) is not exported", n, used[n])
		}
	}
}

// registeredNames returns every "quizstream_..." string literal of the
// module's non-test Go files: the metric names a process can register.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"(quizstream_[a-z0-9_]+)"`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bench" || d.Name() == "test") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(raw, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
