package checks_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// TestThousandChecksUnderFlakyChecker: 1,000 checks, each submitted twice
// with its Idempotency-Key, against a Judge0 that fails a share of its
// requests (5xx, hangs, internal errors): every check ends in its right
// final verdict, once per key, and none is completed twice.
func TestThousandChecksUnderFlakyChecker(t *testing.T) {
	const students, perStudent = 20, 50
	fake := judge0test.Start(t, judge0test.Config{FailRate: 0.1, HangRate: 0.01, InternalRate: 0.05, Polls: 1, Seed: 17})
	s := apptest.New(t, streams.StreamConfig{})
	cc := checksConfig(20 * time.Second)
	applyChecks(t, s, cc)
	a := startAll(t, s, cc, fake.URL, worker.CheckerConfig{Deadline: 10 * time.Minute, Concurrency: 16, RetryDelay: 100 * time.Millisecond})
	clients, _ := apptest.SignupMany(t, a.URL, "flaky", students)

	type sent struct {
		key   string
		right bool
		id    string
	}
	var mu sync.Mutex
	var all []sent
	var wg sync.WaitGroup
	errs := make(chan error, students)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perStudent {
				key := fmt.Sprintf("flaky-%d-%d", i, j)
				right := (i+j)%2 == 0
				src := program(key, right)
				first, err := c.SubmitCheck(t.Context(), sumID, "python", src, client.WithIdempotencyKey(key))
				if err != nil {
					errs <- fmt.Errorf("submit %s: %w", key, err)
					return
				}
				again, err := c.SubmitCheck(t.Context(), sumID, "python", src, client.WithIdempotencyKey(key))
				if err != nil || again.CheckID != first.CheckID {
					errs <- fmt.Errorf("resubmit %s: %v, check %s then %s", key, err, first.CheckID, again.CheckID)
					return
				}
				mu.Lock()
				all = append(all, sent{key, right, first.CheckID})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	start := time.Now()
	waitFinal(t, s, students*perStudent, 5*time.Minute)
	t.Logf("1,000 checks final %s after the last 202; fake Judge0: %+v", time.Since(start).Round(time.Millisecond), fake.Stats())

	got := statuses(t, s)
	if len(got) != students*perStudent {
		t.Fatalf("%d checks stored, want one per Idempotency-Key: %d", len(got), students*perStudent)
	}
	completed := streamCounts(t, s, "completed")
	requested := streamCounts(t, s, "requested")
	for _, x := range all {
		id := uuid.MustParse(x.id)
		want := events.CheckFailed
		if x.right {
			want = events.CheckPassed
		}
		if got[id] != want {
			t.Errorf("check %s (%s): %q, want %q", x.id, x.key, got[id], want)
		}
		if completed[id] != 1 || requested[id] != 1 {
			t.Errorf("check %s: %d requests and %d verdicts in the stream, want 1 and 1", x.id, requested[id], completed[id])
		}
	}
	if len(completed) != len(all) {
		t.Errorf("%d checks completed in the stream, want %d", len(completed), len(all))
	}
	// Progress: every student passed the sum exercise, and no other.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := clients[0].Progress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range p.Courses {
		if cp.ExercisesTotal == 0 {
			continue
		}
		if cp.ExercisesTotal != 3 || cp.ExercisesPassed != 1 {
			t.Fatalf("progress of the exercises' course: %+v, want 3 total and 1 passed", cp)
		}
	}
}
