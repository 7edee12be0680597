package faults_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
)

// TestWorkerKilledMidBatch SIGKILLs a worker process whose batch
// transaction is blocked on a lock the test holds; after the lock is
// released another worker process must store every accepted attempt once.
func TestWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	// A killed process cannot Nak: its batch comes back after AckWait.
	s := apptest.New(t, streams.StreamConfig{AckWait: 2 * time.Second})
	a := s.StartAPI(t, faults.API(api.Config{}))
	clients := faults.Students(t, a.URL, "killed", 3)
	l := faults.NewLedger()

	release := faults.LockProgress(t, s.DBURL)
	defer release()
	faults.SubmitRound(t, s, clients, l, "k", 5)

	w1 := s.Spawn(t, "worker")
	faults.WaitBlocked(t, s)
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	if err := w1.Wait(); err == nil {
		t.Fatal("killed worker exited cleanly")
	}
	if floor := faults.AckFloor(t, s); floor != 0 {
		t.Fatalf("ack floor after the kill = %d, want 0 (nothing was committed)", floor)
	}
	killedAt := time.Now()
	release()
	// The killed worker's transaction must never commit: its backend,
	// now unblocked, finds its client gone and rolls back.
	apptest.WaitFor(t, 5*time.Second, "the killed worker's backend to stop waiting on the lock", func() bool {
		return faults.LockWaiters(t, s) == 0
	})
	if got := s.CountAttempts(t); got != 0 {
		t.Fatalf("attempts stored by a killed worker = %d, want 0", got)
	}

	faults.SubmitRound(t, s, clients, l, "k-late", 2)
	s.Spawn(t, "worker")
	s.WaitDrained(t, 20*time.Second)
	t.Logf("drained %s after the kill (AckWait %s)", time.Since(killedAt).Round(time.Millisecond), s.Stream.AckWait)
	faults.Check(t, s, l)
}
