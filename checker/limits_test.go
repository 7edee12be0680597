package checker_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/checker/judge0test"
)

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
