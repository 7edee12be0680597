package checks_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// TestCheckerKilledMidCall SIGKILLs a checker process while its checks
// are at a slow Judge0: nothing is lost, no check is completed twice, and
// each request is sent to Judge0 again at most once per redelivery (every
// call follows a CodeCheckStarted of its own delivery).
func TestCheckerKilledMidCall(t *testing.T) {
	const n, tests = 20, 3
	fake := judge0test.Start(t, judge0test.Config{Delay: 200 * time.Millisecond, Polls: 10})
	s := apptest.New(t, streams.StreamConfig{})
	cc := checksConfig(3 * time.Second)
	applyChecks(t, s, cc)
	a := startAll(t, s, cc, "", worker.CheckerConfig{})
	c := apptest.Signup(t, a.URL, "killed@example.com")
	sources := map[string]string{}
	for i := range n {
		key := fmt.Sprintf("killed-%d", i)
		src := program(key, true)
		sub, err := c.SubmitCheck(t.Context(), sumID, "python", src, client.WithIdempotencyKey(key))
		if err != nil {
			t.Fatal(err)
		}
		sources[sub.CheckID] = src
	}
	env := []string{"CHECKER_URL=" + fake.URL, "CHECKER_ACK_WAIT=3s", "CHECKER_CONCURRENCY=8", "CHECKER_MAX_CONCURRENT=8", "CHECKER_RATE=1000"}
	first := s.Spawn(t, "checker", env...)
	apptest.WaitFor(t, 30*time.Second, "the checker to be at Judge0", func() bool { return fake.Stats().Submissions >= 8 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err == nil {
		t.Fatal("the killed checker exited cleanly")
	}
	killed := fake.Stats().Submissions
	second := s.Spawn(t, "checker", env...)
	waitFinal(t, s, n, 2*time.Minute)
	cpu := processCPU(t, second.Process.Pid)
	t.Logf("after the kill (%d submissions at Judge0 by then): fake %+v; the second checker used %s of CPU for its checks",
		killed, fake.Stats(), cpu)

	got := statuses(t, s)
	completed := streamCounts(t, s, "completed")
	started := streamCounts(t, s, "started")
	again := 0
	for id, src := range sources {
		cid := uuid.MustParse(id)
		if got[cid] != "passed" || completed[cid] != 1 {
			t.Errorf("check %s: %q with %d verdicts, want passed once", id, got[cid], completed[cid])
		}
		// One call per start, a start per delivery: the submissions Judge0
		// received for the program are at most its tests times its starts.
		if subs := fake.SubmissionsOf(src); subs > tests*started[cid] || subs < tests {
			t.Errorf("check %s: %d submissions at Judge0 for %d starts of %d tests", id, subs, started[cid], tests)
		}
		if started[cid] > 1 {
			again++
		}
	}
	if again == 0 {
		t.Fatal("no check was taken again after the kill: the test killed nothing in flight")
	}
	t.Logf("%d of %d checks were redelivered and called again", again, n)
}

// processCPU returns the user and system CPU time a process used so far.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Logf("cpu of %d: %v", pid, err)
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
