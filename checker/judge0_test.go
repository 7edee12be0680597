package checker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/checker/judge0test"
)

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
