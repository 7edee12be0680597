package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
	"github.com/quizstream/quizstream/worker"
)

// TestWorkerCancelledMidBatch cancels an in-process worker while its batch
// transaction is blocked on a lock the test holds, so the batch is
// certainly fetched and certainly not committed at the moment of cancel.
func TestWorkerCancelledMidBatch(t *testing.T) {
	t.Parallel()

	// (a) The shutdown budget runs out while the batch is blocked: the
	// worker must roll back, hand every message back (Nak, not Ack) and
	// return; a fresh worker then stores everything exactly once.
	t.Run("abandons batch past ShutdownTimeout", func(t *testing.T) {
		t.Parallel()
		s := apptest.New(t, streams.StreamConfig{}) // AckWait 30s: only a Nak brings the batch back quickly
		a := s.StartAPI(t, faults.API(api.Config{}))
		clients := faults.Students(t, a.URL, "cancel-a", 3)
		naks := faults.CountNaks(t, s)
		l := faults.NewLedger()

		release := faults.LockProgress(t, s.DBURL)
		defer release()
		faults.SubmitRound(t, s, clients, l, "a", 5)
		n := l.Len()

		w := s.StartWorker(t, worker.Config{ShutdownTimeout: 300 * time.Millisecond})
		faults.WaitBlocked(t, s)
		w.Cancel()
		select {
		case err := <-w.Done():
			if err != nil {
				t.Fatalf("worker: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("worker did not return within 10s of cancel with ShutdownTimeout 300ms")
		}
		// The lock is still held: nothing can have committed, and the
		// whole batch must have been handed back, none of it acked.
		if got := s.CountAttempts(t); got != 0 {
			t.Fatalf("attempts stored while the batch was blocked = %d, want 0", got)
		}
		apptest.WaitFor(t, 5*time.Second, fmt.Sprintf("%d Nak advisories", n), func() bool { return naks.Load() >= int64(n) })
		if got := naks.Load(); got != int64(n) {
			t.Errorf("Nak advisories = %d, want %d (one per message of the abandoned batch)", got, n)
		}
		if floor := faults.AckFloor(t, s); floor != 0 {
			t.Errorf("ack floor after an abandoned batch = %d, want 0", floor)
		}
		// The abandoned transaction is cancelled in PostgreSQL too, rather
		// than left queued behind the lock.
		apptest.WaitFor(t, 5*time.Second, "the abandoned batch's statement to stop waiting on the lock", func() bool {
			return faults.LockWaiters(t, s) == 0
		})

		release()
		// More attempts arrive while no worker runs.
		faults.SubmitRound(t, s, clients, l, "a-late", 2)
		s.StartWorker(t, worker.Config{})
		// Well under AckWait (30s): the Naks made the batch available at once.
		s.WaitDrained(t, 10*time.Second)
		faults.Check(t, s, l)
	})

	// (b) The shutdown budget is long: the cancelled worker keeps the
	// batch in hand, and once the lock is released commits and acks it
	// before Run returns. No other worker runs.
	t.Run("finishes batch within ShutdownTimeout", func(t *testing.T) {
		t.Parallel()
		s := apptest.New(t, streams.StreamConfig{})
		a := s.StartAPI(t, faults.API(api.Config{}))
		clients := faults.Students(t, a.URL, "cancel-b", 3)
		naks := faults.CountNaks(t, s)
		l := faults.NewLedger()

		release := faults.LockProgress(t, s.DBURL)
		defer release()
		faults.SubmitRound(t, s, clients, l, "b", 5)
		n := l.Len()

		w := s.StartWorker(t, worker.Config{ShutdownTimeout: 20 * time.Second})
		faults.WaitBlocked(t, s)
		w.Cancel()
		// Bounded negative check: with its batch blocked and budget left,
		// the worker must still be working on it.
		select {
		case <-w.Done():
			t.Fatal("worker returned while its batch was blocked and ShutdownTimeout had not passed")
		case <-time.After(300 * time.Millisecond):
		}
		release()
		select {
		case err := <-w.Done():
			if err != nil {
				t.Fatalf("worker: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("worker did not return within 15s of the lock's release")
		}
		// Committed before Run returned.
		if got := s.CountAttempts(t); got != n {
			t.Fatalf("attempts stored when Run returned = %d, want %d", got, n)
		}
		// Acked by the cancelled worker itself: nobody else is running, and
		// AckWait (30s) is far off, so no redelivery can be doing it.
		s.WaitDrained(t, 5*time.Second)
		if got := naks.Load(); got != 0 {
			t.Errorf("Nak advisories = %d, want 0 (the batch was stored)", got)
		}
		faults.Check(t, s, l)
	})
}
