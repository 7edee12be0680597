package faults_test

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
	"github.com/quizstream/quizstream/worker"
)

// On SIGTERM under load the API fails /readyz first while still serving,
// then stops accepting, finishes what is in flight and exits 0: every 202
// it gave is stored.
func TestAPIDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	cmd, base := s.SpawnAPI(t, "", "DRAIN_DELAY=3s", "SHUTDOWN_TIMEOUT=5s")
	clients := faults.Students(t, base, "drain-api", 4)
	l := faults.NewLedger()
	ld := faults.StartSteady(t, s, clients, l, "drain-api")
	apptest.WaitFor(t, 10*time.Second, "some load", func() bool { return ld.Accepted() > 50 })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	probe := apptest.Client(base)
	apptest.WaitFor(t, 1500*time.Millisecond, "/readyz to fail during the drain delay", func() bool {
		status, _, err := faults.Read(t.Context(), probe, "/readyz")
		return err == nil && status == http.StatusServiceUnavailable
	})
	during := ld.Accepted()
	apptest.WaitFor(t, 1400*time.Millisecond, "attempts still accepted while /readyz fails", func() bool {
		return ld.Accepted() > during
	})
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("api exited with %v, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("api did not exit within DRAIN_DELAY + SHUTDOWN_TIMEOUT")
	}
	took := time.Since(sent)
	ld.Halt()
	if others := ld.Others(); len(others) > 0 {
		t.Fatalf("answers other than 202 during the drain: %v", others)
	}

	s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 20*time.Second)
	faults.Check(t, s, l)
	t.Logf("api drained and exited %s after SIGTERM; %d attempts accepted, %d requests refused after the listener closed",
		took.Round(time.Millisecond), l.Len(), ld.Refused())
}
