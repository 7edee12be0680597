package checks_test

import (
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// TestCheckerDown: with Judge0 down, the breaker opens and Judge0 hears
// few calls however many checks wait and however fast they are retried;
// once it is back, the backlog completes.
func TestCheckerDown(t *testing.T) {
	const n = 40
	const down = 10 * time.Second
	fake := judge0test.Start(t, judge0test.Config{})
	fake.SetDown(true)
	s := apptest.New(t, streams.StreamConfig{})
	cc := checksConfig(20 * time.Second)
	applyChecks(t, s, cc)
	// Requests the checker could not take come back after 50ms, and a
	// check retries within itself every 10-100ms: without a breaker,
	// Judge0 would hear thousands of calls while down.
	a := startAll(t, s, cc, fake.URL, worker.CheckerConfig{Deadline: 10 * time.Minute, Concurrency: 8, RetryDelay: 50 * time.Millisecond})
	c := apptest.Signup(t, a.URL, "down@example.com")
	for i := range n {
		key := fmt.Sprintf("down-%d", i)
		if _, err := c.SubmitCheck(t.Context(), sumID, "python", program(key, true), client.WithIdempotencyKey(key)); err != nil {
			t.Fatal(err)
		}
	}
	opened := false
	deadline := time.Now().Add(down)
	for time.Now().Before(deadline) {
		opened = opened || breakerState(t, a) == 2
		time.Sleep(100 * time.Millisecond)
	}
	calls := fake.Stats().Requests
	t.Logf("Judge0 down for %s with %d checks waiting: %d calls reached it (breaker: 5 failures, open 1s)", down, n, calls)
	if !opened {
		t.Fatal("the breaker never opened while Judge0 was down")
	}
	// At most: the failures that open it with every slot's call in flight,
	// then about one probe per second open.
	if max := int64(5 + 16 + 2*int(down/time.Second)*2); calls > max {
		t.Fatalf("%d calls reached a down Judge0 in %s, want at most %d", calls, down, max)
	}
	if st := statuses(t, s); len(st) != n {
		t.Fatalf("%d checks stored while Judge0 was down, want all %d kept", len(st), n)
	}
	fake.SetDown(false)
	start := time.Now()
	waitFinal(t, s, n, 2*time.Minute)
	for id, st := range statuses(t, s) {
		if st != "passed" {
			t.Errorf("check %s: %s after Judge0 came back, want passed", id, st)
		}
	}
	t.Logf("the backlog of %d completed %s after Judge0 came back", n, time.Since(start).Round(time.Millisecond))
}

// breakerState reads quizstream_checker_breaker_state from the instance's registry.
func breakerState(t *testing.T, a *apptest.Instance) float64 {
	t.Helper()
	mfs, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "quizstream_checker_breaker_state" {
			return gauge(mf.GetMetric())
		}
	}
	t.Fatal("no quizstream_checker_breaker_state")
	return 0
}

func gauge(ms []*dto.Metric) float64 {
	if len(ms) == 0 {
		return -1
	}
	return ms[0].GetGauge().GetValue()
}
