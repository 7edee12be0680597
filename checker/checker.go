// Package checker is quizstream's client for an external code checker
// speaking Judge0's HTTP API (Judge0 CE or any compatible service). Check
// runs a program against an exercise's test cases, one submission per test,
// and turns Judge0's status ids into a verdict.
//
// Every call is bounded: a per-request timeout, a whole-check timeout, a
// concurrency limit, a per-second budget, retries with the project's one
// backoff policy (package retry) for transient failures only, and a circuit
// breaker (sony/gobreaker) so that a dead checker is not hammered. The
// package starts no goroutines.
package checker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/quizstream/quizstream/retry"
)

var (
	// ErrUnavailable means the checker failed in a way that may pass by
	// itself: a connection error, a timeout, a 5xx or 429 answer, a
	// malformed answer, a submission lost by the checker, Judge0 status 13
	// (Internal Error) or 14 (Exec Format Error), or no verdict within
	// Config.CheckTimeout. The same check may succeed later.
	ErrUnavailable = errors.New("checker: unavailable")
	// ErrBreakerOpen means the circuit breaker refused the call without
	// sending it: the checker failed repeatedly of late. Try again after
	// Config.Breaker.OpenFor.
	ErrBreakerOpen = errors.New("checker: circuit breaker open")
	// ErrRejected means the checker answered a 4xx (other than 429) or
	// refused a submission in a batch: sending the same request again
	// fails the same way (a wrong token, a language id it lacks).
	ErrRejected = errors.New("checker: request rejected")
	// ErrUnknownLanguage means Config.Languages has no Judge0 id for the
	// requested language. Nothing was sent.
	ErrUnknownLanguage = errors.New("checker: unknown language")
	// ErrInvalidRequest means the Request itself is unusable (no tests,
	// no source). Nothing was sent.
	ErrInvalidRequest = errors.New("checker: invalid request")
)

// Retriable reports whether a check that failed with err may succeed if it
// is tried again later: ErrUnavailable, ErrBreakerOpen, or the caller's
// context ending before a verdict. ErrRejected, ErrUnknownLanguage and
// ErrInvalidRequest are final.
func Retriable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBreakerOpen) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Verdict is a check's overall outcome.
type Verdict string

// The verdicts, as the API's Check.status names them.
const (
	// VerdictPassed: every test case passed (Judge0 status 3).
	VerdictPassed Verdict = "passed"
	// VerdictFailed: at least one test case failed (status 4-12).
	VerdictFailed Verdict = "failed"
	// VerdictError: no verdict could be had (see the error Check returned).
	VerdictError Verdict = "error"
)

// TestCase is one run of the program: its stdin and the stdout expected.
type TestCase struct {
	// Name is shown to the student for a shown test; empty gives "test N".
	// A hidden test is always named "test N" (N counts from 1 in
	// Request.Tests), so its name cannot leak its input.
	Name     string
	Stdin    string
	Expected string
	// Hidden keeps the test's input and the program's stdout and stderr
	// on it out of Result.Output.
	Hidden bool
}

// Request is one program to check.
type Request struct {
	// Language is an exercise's language name ("python", "go"), looked up
	// in Config.Languages.
	Language string
	Source   string
	// Tests are run one submission each; at least one is required.
	Tests []TestCase
	// CPUTimeLimit per test; 0 takes Config.CPUTimeLimit.
	CPUTimeLimit time.Duration
	// MemoryLimitKB per test, in kilobytes as Judge0 counts them; 0 takes
	// Config.MemoryLimitKB.
	MemoryLimitKB int
}

// TestResult is one test case's outcome, safe to show to the student.
type TestResult struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	TimeMS int64  `json:"time_ms"`
}

// Result is what a check found, shaped for an event and for the API's
// Check: the verdict, the tests in Request order, and the output
// (compiler and runtime output of failing tests, at most
// Config.MaxOutputBytes bytes of valid UTF-8).
type Result struct {
	Verdict Verdict      `json:"verdict"`
	Tests   []TestResult `json:"tests"`
	Output  string       `json:"output"`
}

// BreakerConfig configures the circuit breaker.
type BreakerConfig struct {
	// Failures is how many calls in a row must fail (transport errors,
	// timeouts, 5xx, status 13/14) to open the breaker. Defaults to 5.
	Failures uint32
	// OpenFor is how long an open breaker refuses every call before it
	// lets probes through (half-open). Defaults to 30s.
	OpenFor time.Duration
	// Probes is how many calls a half-open breaker lets through, and how
	// many must succeed in a row to close it; one failure reopens it.
	// Defaults to 1.
	Probes uint32
}

// Config configures New.
type Config struct {
	// URL is the checker's base URL (a Judge0 instance), e.g.
	// "http://judge0:2358". Required.
	URL string
	// Token is sent as X-Auth-Token on every request when set. Defaults
	// to none (a Judge0 without authentication).
	Token string
	// Languages maps an exercise's language names to Judge0 language ids.
	// Defaults to DefaultLanguages(); a non-nil map replaces it whole.
	Languages map[string]int
	// Timeout bounds one HTTP request (connect, send, answer). Defaults
	// to 10s.
	Timeout time.Duration
	// CheckTimeout bounds one Check: its submissions, polls and retries.
	// Defaults to 2m.
	CheckTimeout time.Duration
	// PollInterval is the pause between polls of unfinished submissions.
	// Defaults to 500ms.
	PollInterval time.Duration
	// MaxConcurrent caps the checks in progress at once (each holds its
	// submissions in the checker's queue); more wait. Defaults to 8.
	MaxConcurrent int
	// RatePerSecond caps the HTTP requests sent per second, submissions
	// and polls alike. Defaults to 20.
	RatePerSecond float64
	// Burst is how many requests may go at once above the rate. Defaults
	// to RatePerSecond rounded up.
	Burst int
	// MaxBatch caps the submissions of one batch request (Judge0's
	// MAX_SUBMISSION_BATCH_SIZE); more tests go in several. Defaults to 20.
	MaxBatch int
	// CPUTimeLimit is each test's cpu_time_limit unless the Request sets
	// one. Defaults to 2s.
	CPUTimeLimit time.Duration
	// MemoryLimitKB is each test's memory_limit (KB) unless the Request
	// sets one. Defaults to 128000 (Judge0's default).
	MemoryLimitKB int
	// MaxOutputBytes caps Result.Output. Defaults to 16384 (the API's
	// 16 KiB).
	MaxOutputBytes int
	// Retry paces the retries of transient failures. Defaults to
	// retry.Policy{Initial: 200ms, Max: 5s}; CheckTimeout bounds them.
	Retry retry.Policy
	// Breaker configures the circuit breaker; see BreakerConfig.
	Breaker BreakerConfig
	// HTTPClient sends the requests. Defaults to a client of its own
	// (keep-alive connections up to MaxConcurrent x 2).
	HTTPClient *http.Client
	// Logger hears retries and breaker state changes. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the client's metrics. Defaults to none.
	Registerer prometheus.Registerer
}

// DefaultLanguages returns the language map Config.Languages defaults to:
// Judge0 CE's ids for the usual languages.
func DefaultLanguages() map[string]int {
	return map[string]int{
		"bash":       46,
		"c":          50, // C (GCC 9.2.0)
		"cpp":        54, // C++ (GCC 9.2.0)
		"c++":        54,
		"csharp":     51,
		"go":         60,
		"java":       62,
		"javascript": 63, // Node.js
		"kotlin":     78,
		"php":        68,
		"python":     71, // Python 3
		"python3":    71,
		"ruby":       72,
		"rust":       73,
		"typescript": 74,
	}
}

func (c *Config) fill() error {
	if c.URL == "" {
		return errors.New("checker: Config.URL is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("checker: Config.URL %q is not an http(s) URL", c.URL)
	}
	if c.Languages == nil {
		c.Languages = DefaultLanguages()
	}
	langs := make(map[string]int, len(c.Languages))
	for name, id := range c.Languages {
		if id <= 0 {
			return fmt.Errorf("checker: Config.Languages[%q] = %d: a Judge0 id is positive", name, id)
		}
		langs[strings.ToLower(name)] = id
	}
	c.Languages = langs
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &c.Timeout, 10 * time.Second},
		{"CheckTimeout", &c.CheckTimeout, 2 * time.Minute},
		{"PollInterval", &c.PollInterval, 500 * time.Millisecond},
		{"CPUTimeLimit", &c.CPUTimeLimit, 2 * time.Second},
		{"Breaker.OpenFor", &c.Breaker.OpenFor, 30 * time.Second},
	}
	for _, d := range durations {
		if *d.d < 0 {
			return fmt.Errorf("checker: Config.%s is negative", d.name)
		}
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxConcurrent", &c.MaxConcurrent, 8},
		{"MaxBatch", &c.MaxBatch, 20},
		{"MemoryLimitKB", &c.MemoryLimitKB, 128000},
		{"MaxOutputBytes", &c.MaxOutputBytes, 16 << 10},
	}
	for _, i := range ints {
		if *i.v < 0 {
			return fmt.Errorf("checker: Config.%s is negative", i.name)
		}
		if *i.v == 0 {
			*i.v = i.def
		}
	}
	if c.MaxOutputBytes < 64 {
		return errors.New("checker: Config.MaxOutputBytes is below 64")
	}
	if c.RatePerSecond < 0 || math.IsNaN(c.RatePerSecond) || math.IsInf(c.RatePerSecond, 0) {
		return errors.New("checker: Config.RatePerSecond is negative or not finite")
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 20
	}
	if c.Burst < 0 {
		return errors.New("checker: Config.Burst is negative")
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(math.Ceil(c.RatePerSecond)))
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = 200 * time.Millisecond
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = 5 * time.Second
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = 5
	}
	if c.Breaker.Probes == 0 {
		c.Breaker.Probes = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Client calls one checker. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string
	http    *http.Client
	ownHTTP bool
	sem     *semaphore.Weighted
	// inFlight counts the checks holding a slot of sem, for the gauge.
	inFlight atomic.Int64
	limiter  *rate.Limiter
	cb       *gobreaker.CircuitBreaker[struct{}]
	metrics  *metrics
	log      *slog.Logger
}

// New checks cfg, fills its defaults and returns a Client; it returns an
// error naming the first field that is wrong, or the metric that could not
// be registered.
func New(cfg Config) (*Client, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:     cfg,
		base:    strings.TrimRight(cfg.URL, "/"),
		http:    cfg.HTTPClient,
		sem:     semaphore.NewWeighted(int64(cfg.MaxConcurrent)),
		limiter: rate.NewLimiter(rate.Limit(cfg.RatePerSecond), cfg.Burst),
		log:     cfg.Logger,
	}
	if c.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 2 * cfg.MaxConcurrent
		c.http = &http.Client{Transport: t}
		c.ownHTTP = true
	}
	c.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "checker",
		MaxRequests: cfg.Breaker.Probes,
		Timeout:     cfg.Breaker.OpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= cfg.Breaker.Failures
		},
		// A 4xx is the checker answering: alive, whatever it thought of us.
		IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, ErrRejected) },
		// Our own context ending says nothing of the checker.
		IsExcluded: func(err error) bool { return errors.Is(err, errStopped) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			log := c.log.Info
			if to == gobreaker.StateOpen {
				log = c.log.Warn
			}
			log("checker: circuit breaker "+to.String(), "from", from.String(), "open_for", cfg.Breaker.OpenFor)
		},
	})
	m, err := newMetrics(cfg.Registerer,
		func() float64 { return float64(c.cb.State()) },
		func() float64 { return float64(c.inFlight.Load()) })
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

// Close releases the idle connections of the client's own HTTP client.
func (c *Client) Close() {
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
}

// BreakerState returns the circuit breaker's state: "closed", "half-open"
// or "open".
func (c *Client) BreakerState() string { return c.cb.State().String() }

// Language returns the Judge0 id Config.Languages gives name, and whether
// it has one: the API can refuse an unsupported language before anything
// is published.
func (c *Client) Language(name string) (int, bool) {
	id, ok := c.cfg.Languages[strings.ToLower(name)]
	return id, ok
}

// Check runs req's program against its tests and returns the verdict.
//
// On nil error the Result is final: VerdictPassed or VerdictFailed. On an
// error the Result has VerdictError and an Output the student may read,
// and Retriable(err) says whether the same check may succeed later
// (ErrUnavailable, ErrBreakerOpen, ctx ended) or never will (ErrRejected,
// ErrUnknownLanguage, ErrInvalidRequest). An open breaker answers at
// once, without waiting for a concurrency slot or the rate budget.
func (c *Client) Check(ctx context.Context, req Request) (Result, error) {
	res, err := c.check(ctx, req)
	switch {
	case err == nil:
		c.metrics.checks.WithLabelValues(string(res.Verdict)).Inc()
	case Retriable(err):
		c.metrics.checks.WithLabelValues("retriable_error").Inc()
	default:
		c.metrics.checks.WithLabelValues("final_error").Inc()
	}
	return res, err
}

func (c *Client) check(ctx context.Context, req Request) (Result, error) {
	lang, ok := c.Language(req.Language)
	if !ok {
		err := fmt.Errorf("%w: %q", ErrUnknownLanguage, req.Language)
		return errorResult(fmt.Sprintf("language %q is not supported by the checker", req.Language)), err
	}
	if len(req.Tests) == 0 {
		return errorResult("the exercise has no test cases"), fmt.Errorf("%w: no test cases", ErrInvalidRequest)
	}
	if req.Source == "" {
		return errorResult("the program is empty"), fmt.Errorf("%w: empty source", ErrInvalidRequest)
	}
	if c.cb.State() == gobreaker.StateOpen {
		c.metrics.calls.WithLabelValues("breaker_open").Inc()
		return unavailableResult(), fmt.Errorf("check: %w", ErrBreakerOpen)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CheckTimeout)
	defer cancel()
	if err := c.sem.Acquire(cctx, 1); err != nil {
		return unavailableResult(), c.ended(ctx, "wait for a slot", err)
	}
	c.inFlight.Add(1)
	defer func() {
		c.inFlight.Add(-1)
		c.sem.Release(1)
	}()

	r := newRun(c, req, lang)
	err := retry.Do(cctx, c.cfg.Retry, retryNow, func(err error, next time.Duration) {
		c.metrics.retries.Inc()
		c.log.Debug("checker: retrying", "err", err, "in", next)
	}, func() error { return r.attempt(cctx) })
	if err == nil {
		return r.result(), nil
	}
	if errors.Is(err, errStopped) || cctx.Err() != nil {
		return unavailableResult(), c.ended(ctx, "check", err)
	}
	if errors.Is(err, ErrRejected) {
		return errorResult("the checker refused the program: " + rejectionText(err)), fmt.Errorf("check: %w", err)
	}
	return unavailableResult(), fmt.Errorf("check: %w", err)
}

// ended says why a check stopped when a context ended: the caller's (its
// error, as is) or CheckTimeout's (ErrUnavailable).
func (c *Client) ended(parent context.Context, action string, err error) error {
	if parent.Err() != nil {
		return fmt.Errorf("%s: %w", action, context.Cause(parent))
	}
	return fmt.Errorf("%s: %w: no verdict within %s (last: %v)", action, ErrUnavailable, c.cfg.CheckTimeout, err)
}

// retryNow is the classifier of retries within one Check: transient
// failures, but never an open breaker (it answers at once) nor a wait the
// rate budget cannot grant before the check's deadline.
func retryNow(err error) bool {
	return errors.Is(err, ErrUnavailable) && !errors.Is(err, errStopped) && !errors.Is(err, ErrBreakerOpen)
}

func errorResult(output string) Result {
	return Result{Verdict: VerdictError, Tests: []TestResult{}, Output: output}
}

func unavailableResult() Result {
	return errorResult("the checker could not be reached in time: submit again")
}
