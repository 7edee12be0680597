package checker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// adder adds two numbers on the inputs its table knows.
const adder = `import sys
# judge0test: "1 2\n" -> "3\n"
# judge0test: "5 5\n" -> "10\n"
print(sum(map(int, sys.stdin.read().split())))
`

var adderTests = []checker.TestCase{
	{Name: "example 1", Stdin: "1 2\n", Expected: "3\n"},
	{Stdin: "5 5\n", Expected: "10\n", Hidden: true},
}

// newClient returns a client of f tuned for fast tests; mod adjusts it.
func newClient(t testing.TB, url string, mod func(*checker.Config)) (*checker.Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := checker.Config{
		URL:           url,
		Timeout:       2 * time.Second,
		CheckTimeout:  20 * time.Second,
		PollInterval:  2 * time.Millisecond,
		RatePerSecond: 10000,
		Retry:         retry.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:    reg,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := checker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, reg
}

// metric returns the value of a counter or gauge with the given label
// value (any label), or a histogram's sample count.
func metric(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	return 0
}

func TestPassAndFail(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{Polls: 2})
	c, reg := newClient(t, f.URL, nil)

	res, err := c.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests})
	if err != nil {
		t.Fatal(err)
	}
	want := []checker.TestResult{{Name: "example 1", Passed: true, TimeMS: 1}, {Name: "test 2", Passed: true, TimeMS: 1}}
	if res.Verdict != checker.VerdictPassed || fmt.Sprint(res.Tests) != fmt.Sprint(want) || res.Output != "" {
		t.Fatalf("got %+v, want passed with %v and no output", res, want)
	}
	// In Queue, Processing, final: three polls of the one batch.
	if s := f.Stats(); s.Submissions != 2 || s.Polls != 3 || f.SubmissionsOf(adder) != 2 {
		t.Fatalf("fake saw %d submissions (%d of adder) and %d polls, want 2 and 3", s.Submissions, f.SubmissionsOf(adder), s.Polls)
	}

	wrong := "# judge0test: \"1 2\\n\" -> \"4\\n\"\n"
	res, err = c.Check(t.Context(), checker.Request{Language: "Go", Source: wrong, Tests: adderTests})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != checker.VerdictFailed || res.Tests[0].Passed || res.Tests[1].Passed {
		t.Fatalf("got %+v, want both tests failed", res)
	}
	for _, w := range []string{"example 1: Wrong Answer", "--- stdout\n4\n", "test 2: Wrong Answer"} {
		if !strings.Contains(res.Output, w) {
			t.Errorf("output %q lacks %q", res.Output, w)
		}
	}
	if got := metric(t, reg, "quizstream_checker_checks_total", "passed"); got != 1 {
		t.Errorf("checks passed = %v, want 1", got)
	}
	if got := metric(t, reg, "quizstream_checker_calls_total", "ok"); got < 4 {
		t.Errorf("calls ok = %v, want at least 4", got)
	}
	if got := metric(t, reg, "quizstream_checker_call_duration_seconds", "poll"); got < 1 {
		t.Errorf("poll latency samples = %v, want some", got)
	}
}

// Every final status id of Judge0 maps to its verdict, with the output in
// the field Judge0 puts it; 13 and 14 are the checker's fault.
func TestVerdictForEveryStatus(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{Polls: 1})
	c, _ := newClient(t, f.URL, func(c *checker.Config) { c.Breaker.Failures = 1000 })
	for id := 3; id <= 14; id++ {
		t.Run(checker.StatusDescription(id), func(t *testing.T) {
			src := fmt.Sprintf("# judge0test: status %d \"said-%d\"\n", id, id)
			ctx := t.Context()
			if id >= checker.StatusInternalError {
				// These never give a verdict: stop the check once the
				// fake has seen the test submitted again.
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				go func() {
					for f.SubmissionsOf(src) < 2 && ctx.Err() == nil {
						time.Sleep(time.Millisecond)
					}
					cancel()
				}()
			}
			res, err := c.Check(ctx, checker.Request{Language: "python", Source: src,
				Tests: []checker.TestCase{{Name: "shown", Stdin: "x", Expected: "said-3"}}})
			switch {
			case id == 3:
				if err != nil || res.Verdict != checker.VerdictPassed || !res.Tests[0].Passed {
					t.Fatalf("got %+v, %v: want passed", res, err)
				}
			case id <= 12:
				if err != nil || res.Verdict != checker.VerdictFailed || res.Tests[0].Passed {
					t.Fatalf("got %+v, %v: want failed", res, err)
				}
				head := "shown: " + checker.StatusDescription(id) + "\n"
				if !strings.HasPrefix(res.Output, head) || !strings.Contains(res.Output, fmt.Sprintf("said-%d\n", id)) {
					t.Fatalf("output %q: want %q and the program's text", res.Output, head)
				}
				if id == checker.StatusCompilationError && !strings.Contains(res.Output, "--- compile output\n") {
					t.Fatalf("output %q: want the compile output", res.Output)
				}
			default:
				if !checker.Retriable(err) || res.Verdict != checker.VerdictError {
					t.Fatalf("got %+v, %v: want a retriable error", res, err)
				}
				if n := f.SubmissionsOf(src); n < 2 {
					t.Fatalf("%d submissions: want the test submitted again after status %d", n, id)
				}
			}
		})
	}
}

func TestHiddenTestsLeakNothing(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	c, _ := newClient(t, f.URL, nil)
	// The program prints its input on stdout and stderr.
	src := "# judge0test: echo\n# judge0test: stderr \"err-text\"\n"
	res, err := c.Check(t.Context(), checker.Request{Language: "python", Source: src, Tests: []checker.TestCase{
		{Name: "visible", Stdin: "shown-in", Expected: "shown-out"},
		{Name: "secret-in", Stdin: "secret-in", Expected: "secret-out", Hidden: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tests[1].Name != "test 2" {
		t.Errorf("hidden test named %q, want test 2", res.Tests[1].Name)
	}
	if strings.Contains(res.Output, "secret") {
		t.Errorf("output %q shows a hidden test's input or output", res.Output)
	}
	if !strings.Contains(res.Output, "shown-in") || !strings.Contains(res.Output, "test 2: Wrong Answer") {
		t.Errorf("output %q: want the shown test's stdout and the hidden test's status", res.Output)
	}
}

func TestBase64RoundTrip(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	c, _ := newClient(t, f.URL, nil)
	in := "h\u00e9llo\x00 \u2713\n" + strings.Repeat("long line ", 20) + "\n"
	out := "w\u00f6rld \U0001F600\n"
	src := fmt.Sprintf("// \u00fcnicode source\n// judge0test: %q -> %q\n", in, out)
	res, err := c.Check(t.Context(), checker.Request{Language: "go", Source: src, Tests: []checker.TestCase{
		{Stdin: in, Expected: out},
		{Stdin: "?", Expected: "nothing"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Tests[0].Passed || res.Tests[1].Passed {
		t.Fatalf("got %+v: the source, stdin and expected output must reach the checker intact", res)
	}
	// Echo a long, non-ASCII stdin back: the decoded stdout (Judge0 breaks
	// its base64 into lines) must come back byte for byte.
	res, err = c.Check(t.Context(), checker.Request{Language: "go", Source: "// judge0test: echo",
		Tests: []checker.TestCase{{Stdin: in, Expected: "different"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Output, "--- stdout\n"+strings.ReplaceAll(in, "\x00", "\x00")) {
		t.Fatalf("output %q lacks the program's stdout %q", res.Output, in)
	}
}

func TestOutputLimit(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	c, _ := newClient(t, f.URL, nil)
	big := strings.Repeat("\u00e9rr\u2713 ", 8000) // 64 KB of multi-byte text
	src := fmt.Sprintf("# judge0test: status 11 %q\n", big)
	tests := make([]checker.TestCase, 5)
	for i := range tests {
		tests[i] = checker.TestCase{Stdin: fmt.Sprint(i), Expected: "x"}
	}
	res, err := c.Check(t.Context(), checker.Request{Language: "python", Source: src, Tests: tests})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) > 16<<10 || !utf8.ValidString(res.Output) || !strings.HasSuffix(res.Output, "[output truncated]\n") {
		t.Fatalf("output of %d bytes (valid UTF-8 %v), ending %q: want at most 16 KiB, valid, marked truncated",
			len(res.Output), utf8.ValidString(res.Output), res.Output[max(0, len(res.Output)-40):])
	}
	if len(res.Output) < 16<<10-8 {
		t.Fatalf("output of %d bytes: want it filled to the limit", len(res.Output))
	}
}

func TestAuthToken(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{Token: "s3cret"})
	good, _ := newClient(t, f.URL, func(c *checker.Config) { c.Token = "s3cret" })
	if _, err := good.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests}); err != nil {
		t.Fatal(err)
	}
	if !f.SawToken("s3cret") {
		t.Fatal("the fake never saw X-Auth-Token")
	}
	// A wrong token is a 401: rejected, never retried.
	bad, reg := newClient(t, f.URL, func(c *checker.Config) { c.Token = "wrong" })
	before := f.Stats().Requests
	res, err := bad.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests})
	if !errors.Is(err, checker.ErrRejected) || checker.Retriable(err) || res.Verdict != checker.VerdictError {
		t.Fatalf("got %+v, %v: want a final ErrRejected", res, err)
	}
	if n := f.Stats().Requests - before; n != 1 {
		t.Fatalf("%d requests for a 401, want 1", n)
	}
	if got := metric(t, reg, "quizstream_checker_calls_total", "rejected"); got != 1 {
		t.Fatalf("calls rejected = %v, want 1", got)
	}
}

func TestClientErrorsNeverRetried(t *testing.T) {
	t.Parallel()
	// Judge0 refuses a language id it lacks (422 when every submission of
	// the batch is refused), and a batch larger than its limit (400).
	f := judge0test.Start(t, judge0test.Config{Languages: map[int]bool{60: true}, MaxBatch: 2})
	c, _ := newClient(t, f.URL, func(c *checker.Config) { c.MaxBatch = 3 })
	for _, tc := range []struct {
		name  string
		req   checker.Request
		shows string
	}{
		{"language the checker lacks", checker.Request{Language: "python", Source: adder, Tests: adderTests}, "language with id 71"},
		{"batch too large", checker.Request{Language: "go", Source: adder, Tests: append(adderTests, adderTests...)}, "less than or equal to 2"},
	} {
		before := f.Stats().Requests
		res, err := c.Check(t.Context(), tc.req)
		if !errors.Is(err, checker.ErrRejected) || checker.Retriable(err) {
			t.Errorf("%s: %v: want a final ErrRejected", tc.name, err)
		}
		if n := f.Stats().Requests - before; n != 1 {
			t.Errorf("%s: %d requests, want 1", tc.name, n)
		}
		if !strings.Contains(res.Output, tc.shows) {
			t.Errorf("%s: output %q lacks the checker's reason %q", tc.name, res.Output, tc.shows)
		}
	}

	// Nothing is sent for a language the map lacks.
	before := f.Stats().Requests
	if _, err := c.Check(t.Context(), checker.Request{Language: "cobol", Source: "x", Tests: adderTests}); !errors.Is(err, checker.ErrUnknownLanguage) || checker.Retriable(err) {
		t.Errorf("unknown language: %v, want a final ErrUnknownLanguage", err)
	}
	if _, ok := c.Language("COBOL"); ok {
		t.Error("Language(COBOL) found an id")
	}
	if id, ok := c.Language("Python"); !ok || id != 71 {
		t.Errorf("Language(Python) = %d, %v; want 71", id, ok)
	}
	if n := f.Stats().Requests - before; n != 0 {
		t.Errorf("%d requests for an unknown language, want 0", n)
	}
}

// 5xx and 429 are retried; the first other 4xx ends the check.
func TestRetriesOnlyTransient(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	codes := []int{503, 429, 500, 502, 400}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		w.WriteHeader(codes[min(i, len(codes)-1)])
	}))
	defer srv.Close()
	c, reg := newClient(t, srv.URL, func(c *checker.Config) { c.Breaker.Failures = 100 })
	_, err := c.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests})
	if !errors.Is(err, checker.ErrRejected) {
		t.Fatalf("err %v, want ErrRejected from the 400", err)
	}
	if got := n.Load(); got != 5 {
		t.Fatalf("%d requests, want 5: four transient answers retried, the 400 not", got)
	}
	if got := metric(t, reg, "quizstream_checker_retries_total", ""); got != 4 {
		t.Fatalf("retries = %v, want 4", got)
	}

	// A flaky checker (half its answers 5xx, a share of status 13) still
	// gives the verdict, in one Check.
	f := judge0test.Start(t, judge0test.Config{FailRate: 0.5, InternalRate: 0.3, Polls: 1, Seed: 7})
	c2, _ := newClient(t, f.URL, func(c *checker.Config) { c.Breaker.Failures = 100 })
	res, err := c2.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests})
	if err != nil || res.Verdict != checker.VerdictPassed {
		t.Fatalf("got %+v, %v: want passed through the failures", res, err)
	}
	if s := f.Stats(); s.Failed == 0 {
		t.Fatalf("fake stats %+v: the test needs some 5xx answers", s)
	}
}

func TestTimeoutsBounded(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{HangRate: 1})
	const timeout, checkTimeout = 40 * time.Millisecond, time.Second
	c, reg := newClient(t, f.URL, func(c *checker.Config) {
		c.Timeout, c.CheckTimeout = timeout, checkTimeout
		c.Breaker.Failures = 1000
	})
	res, err := c.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests})
	if !errors.Is(err, checker.ErrUnavailable) || !checker.Retriable(err) || res.Verdict != checker.VerdictError {
		t.Fatalf("got %+v, %v: want a retriable ErrUnavailable", res, err)
	}
	// Each hung request was abandoned after Timeout and tried again, and
	// the whole check ended at CheckTimeout.
	hung := f.Stats().Hung
	if hung < 2 || hung > int64(checkTimeout/timeout)+1 {
		t.Fatalf("%d hung requests, want between 2 and %d", hung, checkTimeout/timeout+1)
	}
	if got := metric(t, reg, "quizstream_checker_calls_total", "timeout"); got < 2 {
		t.Fatalf("calls timeout = %v, want the hung requests", got)
	}

	// The caller's cancellation ends a check too, as its own error.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	c2, _ := newClient(t, f.URL, func(c *checker.Config) { c.Breaker.Failures = 1000 })
	_, err = c2.Check(ctx, checker.Request{Language: "python", Source: adder, Tests: adderTests})
	if !errors.Is(err, context.Canceled) || !checker.Retriable(err) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{Delay: 10 * time.Millisecond, Polls: 1})
	c, reg := newClient(t, f.URL, func(c *checker.Config) { c.MaxConcurrent = 3 })
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	stop := make(chan struct{})
	var gaugeMax float64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				gaugeMax = max(gaugeMax, metric(t, reg, "quizstream_checker_checks_in_flight", ""))
			}
		}
	}()
	for range 12 {
		wg.Go(func() {
			if _, err := c.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	if m := f.Stats().MaxInFlight; m > 3 {
		t.Fatalf("the fake saw %d requests at once, want at most MaxConcurrent = 3", m)
	}
	if g := metric(t, reg, "quizstream_checker_checks_in_flight", ""); gaugeMax > 3 || gaugeMax < 1 || g != 0 {
		t.Fatalf("in-flight gauge peaked at %v and ended at %v: want 1 to 3, then 0", gaugeMax, g)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	const perSecond = 40
	c, _ := newClient(t, f.URL, func(c *checker.Config) { c.RatePerSecond, c.Burst = perSecond, 1 })
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// 16 requests at least (a submit and a poll each); the budget allows
	// the burst plus perSecond for every second that passed.
	got := f.Stats().Requests
	allowed := 1 + int64(perSecond*elapsed.Seconds()) + 1
	if got < 16 || got > allowed {
		t.Fatalf("%d requests in %v: want at least 16 and at most %d", got, elapsed, allowed)
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	f.SetDown(true)
	const failures = 5
	c, reg := newClient(t, f.URL, func(c *checker.Config) {
		c.MaxConcurrent = 1
		c.Breaker = checker.BreakerConfig{Failures: failures, OpenFor: 2 * time.Second}
	})
	req := checker.Request{Language: "python", Source: adder, Tests: adderTests}
	for i := range 20 {
		res, err := c.Check(t.Context(), req)
		if !errors.Is(err, checker.ErrBreakerOpen) || !checker.Retriable(err) || res.Verdict != checker.VerdictError {
			t.Fatalf("check %d: %+v, %v: want ErrBreakerOpen", i, res, err)
		}
	}
	// The first check retried until the breaker opened; the other 19 sent
	// nothing.
	if s := f.Stats(); s.Refused != failures || s.Requests != failures {
		t.Fatalf("the fake received %d requests (%d refused), want %d", s.Requests, s.Refused, failures)
	}
	if c.BreakerState() != "open" || metric(t, reg, "quizstream_checker_breaker_state", "") != 2 {
		t.Fatalf("breaker %s, gauge %v: want open, 2", c.BreakerState(), metric(t, reg, "quizstream_checker_breaker_state", ""))
	}
	if got := metric(t, reg, "quizstream_checker_calls_total", "breaker_open"); got < 19 {
		t.Fatalf("calls breaker_open = %v, want at least 19", got)
	}

	f.SetDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for c.BreakerState() == "open" {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never left the open state")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := c.Check(t.Context(), req)
	if err != nil || res.Verdict != checker.VerdictPassed {
		t.Fatalf("after the checker returned: %+v, %v", res, err)
	}
	if c.BreakerState() != "closed" || metric(t, reg, "quizstream_checker_breaker_state", "") != 0 {
		t.Fatalf("breaker %s after a success, want closed", c.BreakerState())
	}
}

// Many checks at once against a dead checker: the breaker opens after
// Failures calls, plus those already in flight.
func TestBreakerUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	f.SetDown(true)
	const failures, concurrent = 5, 8
	c, _ := newClient(t, f.URL, func(c *checker.Config) {
		c.MaxConcurrent = concurrent
		c.Breaker = checker.BreakerConfig{Failures: failures, OpenFor: time.Minute}
	})
	var wg sync.WaitGroup
	var open atomic.Int32
	for range 50 {
		wg.Go(func() {
			_, err := c.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests})
			if errors.Is(err, checker.ErrBreakerOpen) {
				open.Add(1)
			} else if err == nil {
				t.Error("a check passed against a dead checker")
			}
		})
	}
	wg.Wait()
	if got := f.Stats().Requests; got < failures || got > failures+concurrent {
		t.Fatalf("the fake received %d requests, want %d to %d", got, failures, failures+concurrent)
	}
	if open.Load() != 50 {
		t.Fatalf("%d of 50 checks ended on the open breaker, want all", open.Load())
	}
}

// 1,000 checks against a flaky checker all reach their verdict; a check
// that fails retriably is tried again, as a redelivery would.
func TestThousandChecksFlaky(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("1,000 checks")
	}
	f := judge0test.Start(t, judge0test.Config{FailRate: 0.15, HangRate: 0.02, InternalRate: 0.05, Polls: 1, Seed: 42})
	const openFor = 50 * time.Millisecond
	c, _ := newClient(t, f.URL, func(c *checker.Config) {
		c.Timeout = time.Second
		c.CheckTimeout = 10 * time.Second
		c.MaxConcurrent = 32
		c.Breaker = checker.BreakerConfig{Failures: 5, OpenFor: openFor}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	wrong := "# judge0test: \"1 2\\n\" -> \"3\\n\"\n" // fails the hidden test
	var (
		wg         sync.WaitGroup
		next       atomic.Int32
		redeliver  atomic.Int32
		mu         sync.Mutex
		verdicts   = map[checker.Verdict]int{}
		mismatched int
	)
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= 1000 {
					return
				}
				src, want := adder, checker.VerdictPassed
				if i%2 == 1 {
					src, want = wrong, checker.VerdictFailed
				}
				var res checker.Result
				var err error
				for {
					res, err = c.Check(ctx, checker.Request{Language: "python", Source: src, Tests: adderTests})
					if err == nil || !checker.Retriable(err) || ctx.Err() != nil {
						break
					}
					redeliver.Add(1)
					time.Sleep(openFor)
				}
				mu.Lock()
				verdicts[res.Verdict]++
				if err != nil || res.Verdict != want {
					mismatched++
					if mismatched < 5 {
						t.Errorf("check %d: %s, %v; want %s", i, res.Verdict, err, want)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s := f.Stats()
	t.Logf("verdicts %v, redeliveries %d, fake %+v", verdicts, redeliver.Load(), s)
	if verdicts[checker.VerdictPassed] != 500 || verdicts[checker.VerdictFailed] != 500 || mismatched != 0 {
		t.Fatalf("verdicts %v, %d wrong: want 500 passed and 500 failed", verdicts, mismatched)
	}
	if s.Failed == 0 || s.Hung == 0 {
		t.Fatalf("fake %+v: the test needs 5xx answers and hangs", s)
	}
}

func TestBatchesSplit(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	c, _ := newClient(t, f.URL, nil)
	tests := make([]checker.TestCase, 45)
	for i := range tests {
		tests[i] = checker.TestCase{Stdin: fmt.Sprint(i), Expected: fmt.Sprint(i)}
	}
	res, err := c.Check(t.Context(), checker.Request{Language: "python", Source: "# judge0test: echo\n# judge0test: time 7", Tests: tests})
	if err != nil || res.Verdict != checker.VerdictPassed || len(res.Tests) != 45 {
		t.Fatalf("got %+v, %v: want 45 passed tests", res, err)
	}
	if res.Tests[44].Name != "test 45" || res.Tests[44].TimeMS != 7 {
		t.Fatalf("last test %+v, want test 45 of 7 ms", res.Tests[44])
	}
	// 20 + 20 + 5: three submits and three polls.
	if s := f.Stats(); s.Requests != 6 || s.Submissions != 45 {
		t.Fatalf("fake %+v: want 6 requests and 45 submissions", s)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []checker.Config{
		{},
		{URL: "judge0:2358"},
		{URL: "http://x", Languages: map[string]int{"python": 0}},
		{URL: "http://x", Timeout: -1},
		{URL: "http://x", RatePerSecond: -1},
	} {
		if _, err := checker.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted it", cfg)
		}
	}
	c, err := checker.New(checker.Config{URL: "http://x", Languages: map[string]int{"Pascal": 67}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Language("python"); ok {
		t.Error("a Languages map must replace the defaults")
	}
	if id, _ := c.Language("pascal"); id != 67 {
		t.Errorf("pascal = %d, want 67", id)
	}
}

// A 4xx is the checker answering: it never opens the breaker.
func TestRejectionsKeepBreakerClosed(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{Token: "right"})
	c, _ := newClient(t, f.URL, func(c *checker.Config) {
		c.Token = "wrong"
		c.Breaker.Failures = 3
	})
	for i := range 10 {
		if _, err := c.Check(t.Context(), checker.Request{Language: "python", Source: adder, Tests: adderTests}); !errors.Is(err, checker.ErrRejected) {
			t.Fatalf("check %d: %v, want ErrRejected", i, err)
		}
	}
	if c.BreakerState() != "closed" || f.Stats().Unauthed != 10 {
		t.Fatalf("breaker %s, %d answered 401: want closed and 10", c.BreakerState(), f.Stats().Unauthed)
	}
}

// An open breaker answers before the check waits for the rate budget.
func TestOpenBreakerAnswersAtOnce(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	f.SetDown(true)
	c, _ := newClient(t, f.URL, func(c *checker.Config) {
		c.RatePerSecond, c.Burst = 0.5, 1 // one request, then one every 2s
		c.Breaker = checker.BreakerConfig{Failures: 1, OpenFor: time.Minute}
	})
	req := checker.Request{Language: "python", Source: adder, Tests: adderTests}
	if _, err := c.Check(t.Context(), req); !errors.Is(err, checker.ErrBreakerOpen) {
		t.Fatalf("first check: %v, want the breaker opened by its failure", err)
	}
	// The budget is spent: a check that waited for it would outlive this
	// context and end with the context's error instead.
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Check(ctx, req); !errors.Is(err, checker.ErrBreakerOpen) {
		t.Fatalf("second check: %v, want ErrBreakerOpen at once", err)
	}
	if n := f.Stats().Requests; n != 1 {
		t.Fatalf("the fake received %d requests, want 1", n)
	}
}

// A test expecting no output passes a silent program and fails a talkative
// one, whatever Judge0 makes of an empty expected_output.
func TestEmptyExpectedOutput(t *testing.T) {
	t.Parallel()
	f := judge0test.Start(t, judge0test.Config{})
	c, _ := newClient(t, f.URL, nil)
	tests := []checker.TestCase{{Stdin: "quiet", Expected: ""}, {Stdin: "loud", Expected: ""}, {Stdin: "spaces", Expected: ""}}
	res, err := c.Check(t.Context(), checker.Request{Language: "python", Tests: tests,
		Source: "# judge0test: \"loud\" -> \"hello\\n\"\n# judge0test: \"spaces\" -> \" \\n\"\n"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Tests[0].Passed || res.Tests[1].Passed || !res.Tests[2].Passed {
		t.Fatalf("got %+v: want the silent and blank runs passed, the one printing hello failed", res)
	}
	if !strings.Contains(res.Output, "test 2: Wrong Answer\n--- stdout\nhello\n") {
		t.Fatalf("output %q: want test 2's wrong answer and its stdout", res.Output)
	}
}

// BenchmarkCheck measures a check of two tests against a fast fake (the
// fake's own work included): CPU per check is the figure to read.
func BenchmarkCheck(b *testing.B) {
	f := judge0test.Start(b, judge0test.Config{Polls: 1})
	c, _ := newClient(b, f.URL, func(c *checker.Config) { c.PollInterval = time.Millisecond; c.MaxConcurrent = 64 })
	req := checker.Request{Language: "python", Source: adder, Tests: adderTests}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Check(context.Background(), req); err != nil {
				b.Error(err)
			}
		}
	})
}
