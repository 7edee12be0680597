package checker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
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
