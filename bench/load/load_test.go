package load_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startStack runs an API and a worker on a private stack and returns the
// API's URL.
func startStack(t *testing.T, withWorker bool) string {
	t.Helper()
	s := apptest.New(t, streams.StreamConfig{})
	// Closed-loop students submit far above a person's pace, as in the
	// benchmark: the per-student attempt rate is off.
	in := s.StartAPI(t, api.Config{AttemptRate: -1})
	if withWorker {
		s.StartWorker(t, worker.Config{})
	}
	return in.URL
}

func run(t *testing.T, cfg load.Config) load.Result {
	t.Helper()
	res, err := load.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("load.Run: %v", err)
	}
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	return res
}

// checkLatency fails t unless l is a plausible distribution of n values.
func checkLatency(t *testing.T, name string, l load.Latency, n int64) {
	t.Helper()
	if l.Count != n || n == 0 {
		t.Errorf("%s: %d latencies for %d requests", name, l.Count, n)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max*1.001) {
		t.Errorf("%s: quantiles out of order: %+v", name, l)
	}
}

func TestClosedMix(t *testing.T) {
	url := startStack(t, true)
	var progress []load.Progress
	res := run(t, load.Config{
		URL: url, Users: 6, WarmUp: 300 * time.Millisecond, Duration: 2 * time.Second,
		ResendShare: 0.3, LagRate: 100, Progress: func(p load.Progress) { progress = append(progress, p) },
	})
	if res.Mode != "closed" || res.Users != 6 || res.Window != 2 {
		t.Errorf("mode %q, users %d, window %gs; want closed, 6, 2s", res.Mode, res.Users, res.Window)
	}
	if len(res.Tasks) != 5 {
		t.Fatalf("%d tasks, want the 5 of the mix", len(res.Tasks))
	}
	var sum int64
	for _, task := range res.Tasks {
		if task.Requests == 0 || task.Errors != 0 || task.Unavailable != 0 || task.RateLimited != 0 {
			t.Errorf("task %s: %d requests, %d errors, %d 503, %d 429; want requests and no failure",
				task.Name, task.Requests, task.Errors, task.Unavailable, task.RateLimited)
		}
		checkLatency(t, task.Name, task.Latency, task.Requests)
		if want := float64(task.Requests) / 2; task.RPS != want {
			t.Errorf("task %s: %g req/s, want %g", task.Name, task.RPS, want)
		}
		sum += task.Requests
	}
	if res.Total.Requests != sum {
		t.Errorf("total %d requests, tasks sum to %d", res.Total.Requests, sum)
	}
	checkLatency(t, "total", res.Total.Latency, sum)
	if c, _ := res.Task(load.TaskContent); c.NotModified == 0 {
		t.Errorf("no 304 among %d content reads, half of which send If-None-Match", c.Requests)
	}
	if res.Signup.Requests != 6 || res.Signup.Errors != 0 {
		t.Errorf("signup: %d requests, %d errors; want 6, 0", res.Signup.Requests, res.Signup.Errors)
	}
	submit, _ := res.Task(load.TaskSubmit)
	if res.Accepted != submit.Requests || res.Resends == 0 || res.Resends >= res.Accepted {
		t.Errorf("%d 202s (%d re-sent) for %d measured POSTs; want them equal, and some re-sent", res.Accepted, res.Resends, submit.Requests)
	}
	if res.Lag.Count == 0 || res.Lag.Max <= 0 || res.LagPolls == 0 {
		t.Errorf("lag: %+v after %d polls; want samples", res.Lag, res.LagPolls)
	}
	v := res.Verify
	if v == nil || !v.OK {
		t.Fatalf("check: %+v", v)
	}
	// Every key of the run was checked, the warm-up's too.
	if v.Keys < int(res.Accepted-res.Resends) || v.Recorded != v.Keys || v.Listed != v.Keys ||
		v.Students != 6 || v.ProgressChecked != 6 || v.Unknown != 0 || v.Extra != 0 {
		t.Errorf("check %+v: want every key of the %d distinct 202s recorded and listed once", v, res.Accepted-res.Resends)
	}
	if len(progress) < 2 {
		t.Errorf("%d progress reports in a run of over 2s; want one a second", len(progress))
	}
}

func TestOpenModel(t *testing.T) {
	url := startStack(t, true)
	res := run(t, load.Config{URL: url, Users: 5, Rate: 150, WarmUp: 200 * time.Millisecond, Duration: 2 * time.Second, LagRate: -1})
	if res.Mode != "open" || res.Rate != 150 {
		t.Errorf("mode %q at %g/s, want open at 150/s", res.Mode, res.Rate)
	}
	// 300 tasks were due in the window; each one's first try is measured
	// from its due time, and a re-sent POST adds a try.
	if res.Total.Requests < 300 || res.Total.Requests > 300+res.Resends || res.Total.Errors != 0 {
		t.Errorf("%d answered tries (%d errors, %d re-sent POSTs) for 300 tasks due", res.Total.Requests, res.Total.Errors, res.Resends)
	}
	if res.Lag.Count != 0 {
		t.Errorf("lag sampled %d times with LagRate < 0", res.Lag.Count)
	}
	if v := res.Verify; v == nil || !v.OK || v.Keys == 0 {
		t.Fatalf("check: %+v", v)
	}
}

// faulty wraps a transport: it answers some attempt POSTs 503 after the
// API accepted them (the outcome the client cannot know), and can make
// every 202 or progress body lie.
type faulty struct {
	next          http.RoundTripper
	lost503       float64 // share of accepted POSTs answered 503 instead
	scoreDelta    int     // added to every 202's score
	progressDelta int     // added to every progress course's attempts
}

var (
	scoreRe    = regexp.MustCompile(`"score":(\d+)`)
	attemptsRe = regexp.MustCompile(`"attempts":(\d+)`)
)

func (f *faulty) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	post := req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/attempts")
	switch {
	case post && resp.StatusCode == http.StatusAccepted && rand.Float64() < f.lost503:
		resp.Body.Close()
		resp.StatusCode, resp.Status = http.StatusServiceUnavailable, "503 Service Unavailable"
		resp.Header.Set("Retry-After", "0")
		resp.Body = io.NopCloser(strings.NewReader(`{"error":{"code":"unavailable","message":"lost"}}`))
	case post && resp.StatusCode == http.StatusAccepted && f.scoreDelta != 0:
		rewrite(resp, scoreRe, f.scoreDelta)
	case req.URL.Path == "/api/v1/student-progress" && f.progressDelta != 0:
		rewrite(resp, attemptsRe, f.progressDelta)
	}
	return resp, nil
}

func rewrite(resp *http.Response, re *regexp.Regexp, delta int) {
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body = re.ReplaceAllFunc(body, func(m []byte) []byte {
		n, _ := strconv.Atoi(string(re.FindSubmatch(m)[1]))
		return bytes.Replace(m, re.FindSubmatch(m)[1], []byte(strconv.Itoa(n+delta)), 1)
	})
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
}

func faultyClient(t *testing.T, f *faulty) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	f.next = tr
	return &http.Client{Transport: f}
}

// A 503 after the API stored the attempt is tried again with the same
// key: the retry is answered with the original, and nothing is stored
// twice.
func TestLost202sAreRetriedWithTheSameKey(t *testing.T) {
	url := startStack(t, true)
	res := run(t, load.Config{
		URL: url, Users: 4, Weights: load.SubmitOnly, Duration: 1500 * time.Millisecond,
		HTTPClient: faultyClient(t, &faulty{lost503: 0.3}), LagRate: -1,
	})
	submit, _ := res.Task(load.TaskSubmit)
	if submit.Unavailable == 0 || submit.Errors != 0 {
		t.Errorf("submit: %d 503s, %d errors; want 503s counted apart, no error", submit.Unavailable, submit.Errors)
	}
	if v := res.Verify; v == nil || !v.OK || v.Unknown != 0 || v.Extra != 0 {
		t.Fatalf("check: %+v", v)
	}
}

// The check fails when the stored attempts or progress differ from what
// the 202s said, or when nothing is recorded.
func TestCheckFails(t *testing.T) {
	cases := []struct {
		name   string
		worker bool
		fault  faulty
		want   func(v load.Verification) bool
	}{
		{"no worker", false, faulty{}, func(v load.Verification) bool { return v.NotRecorded == v.Keys && v.Recorded == 0 }},
		{"202 with another score", true, faulty{scoreDelta: 100}, func(v load.Verification) bool { return v.Mismatched == v.Keys }},
		{"progress counting one more", true, faulty{progressDelta: 1}, func(v load.Verification) bool {
			return v.ProgressMismatched == v.Students && v.Recorded == v.Keys
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := startStack(t, c.worker)
			f := c.fault
			res := run(t, load.Config{
				URL: url, Users: 3, Weights: load.SubmitOnly, Duration: 500 * time.Millisecond, LagRate: -1,
				ResendShare: -1, VerifyTimeout: 2 * time.Second, HTTPClient: faultyClient(t, &f),
			})
			v := res.Verify
			if v == nil || v.Keys == 0 {
				t.Fatalf("check: %+v; want keys checked", v)
			}
			if v.OK || !c.want(*v) || len(v.Problems) == 0 {
				t.Errorf("check: %+v; want it to fail this way", v)
			}
		})
	}
}

func TestParseWeights(t *testing.T) {
	w, err := load.ParseWeights("submit=3, content=1, check=2")
	if err != nil || w != (load.Weights{Submit: 3, Content: 1, Check: 2}) {
		t.Errorf("ParseWeights: %+v, %v", w, err)
	}
	if w, err := load.ParseWeights(load.DefaultWeights.String()); err != nil || w != load.DefaultWeights {
		t.Errorf("ParseWeights(DefaultWeights.String()): %+v, %v", w, err)
	}
	for _, bad := range []string{"nope=1", "submit", "submit=-1", "submit=0"} {
		if _, err := load.ParseWeights(bad); err == nil {
			t.Errorf("ParseWeights(%q) accepted it", bad)
		}
	}
}
