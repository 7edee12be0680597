package faults_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
	"github.com/quizstream/quizstream/worker"
)

// On SIGTERM under load a worker stops fetching, commits and acks the batch
// in hand, drains its connection and exits 0: nothing is left pending for
// redelivery.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{AckWait: time.Minute})
	a := s.StartAPI(t, faults.API(api.Config{}))
	cmd := s.Spawn(t, "worker", "SHUTDOWN_TIMEOUT=10s", "BATCH_SIZE=50")
	clients := faults.Students(t, a.URL, "drain-worker", 4)
	l := faults.NewLedger()
	ld := faults.StartSteady(t, s, clients, l, "drain-worker")
	apptest.WaitFor(t, 10*time.Second, "the worker to store some", func() bool { return s.CountAttempts(t) > 100 })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exited with %v, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not exit within SHUTDOWN_TIMEOUT")
	}
	took := time.Since(sent)
	cons, err := s.Log.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := cons.CachedInfo().NumAckPending; n != 0 {
		t.Fatalf("%d messages left unacknowledged by the drained worker (AckWait is a minute)", n)
	}
	ld.Halt()
	s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 20*time.Second)
	faults.Check(t, s, l)
	t.Logf("worker drained and exited %s after SIGTERM; %d attempts stored", took.Round(time.Millisecond), l.Len())
}
