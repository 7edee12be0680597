package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/worker"
)

// load submits keyed attempts from every client until stop is closed and
// records each 202 in the ledger; it counts other statuses and transport
// errors (a closed listener) apart.
type load struct {
	wg       sync.WaitGroup
	stop     chan struct{}
	accepted atomic.Int64
	statuses sync.Map // status -> *atomic.Int64, every non-202 answer
	refused  atomic.Int64
}

func startLoad(t *testing.T, s *stack, clients []*client, l *faultLedger, prefix string) *load {
	ld := &load{stop: make(chan struct{})}
	for ci, c := range clients {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for i := 0; i < 20000; i++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				q := s.Quizzes[(ci+i)%len(s.Quizzes)]
				key := fmt.Sprintf("%s-%d-%d", prefix, ci, i)
				status, body, err := c.submit(q.ID.String(), key, answersFor(q, i%11))
				switch {
				case err != nil:
					ld.refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				case status == http.StatusAccepted:
					ld.accepted.Add(1)
					if err := l.add(key, body); err != nil {
						t.Error(err)
					}
				default:
					n, _ := ld.statuses.LoadOrStore(status, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
			}
		}()
	}
	return ld
}

func (ld *load) halt() {
	close(ld.stop)
	ld.wg.Wait()
}

func (ld *load) others() map[int]int64 {
	out := map[int]int64{}
	ld.statuses.Range(func(k, v any) bool { out[k.(int)] = v.(*atomic.Int64).Load(); return true })
	return out
}

// On SIGTERM under load the API fails /readyz first while still serving,
// then stops accepting, finishes what is in flight and exits 0: every 202
// it gave is stored.
func TestAPIDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	addr := freeAddr(t)
	cmd := s.spawn(t, "api", "LISTEN_ADDR="+addr, "DRAIN_DELAY=3s", "SHUTDOWN_TIMEOUT=5s")
	base := "http://" + addr
	waitFor(t, 30*time.Second, "the api process", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	clients := faultSignup(t, base, "drain-api", 4)
	l := newFaultLedger()
	ld := startLoad(t, s, clients, l, "drain-api")
	waitFor(t, 10*time.Second, "some load", func() bool { return ld.accepted.Load() > 50 })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	waitFor(t, 1500*time.Millisecond, "/readyz to fail during the drain delay", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	during := ld.accepted.Load()
	waitFor(t, 1400*time.Millisecond, "attempts still accepted while /readyz fails", func() bool {
		return ld.accepted.Load() > during
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
	ld.halt()
	if others := ld.others(); len(others) > 0 {
		t.Fatalf("answers other than 202 during the drain: %v", others)
	}

	s.startWorker(t, worker.Config{})
	s.waitDrained(t, 20*time.Second)
	faultCheckStored(t, s, l)
	t.Logf("api drained and exited %s after SIGTERM; %d attempts accepted, %d requests refused after the listener closed",
		took.Round(time.Millisecond), l.len(), ld.refused.Load())
}

// On SIGTERM under load a worker stops fetching, commits and acks the batch
// in hand, drains its connection and exits 0: nothing is left pending for
// redelivery.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{AckWait: time.Minute})
	a := s.startAPI(t, api.Config{})
	cmd := s.spawn(t, "worker", "SHUTDOWN_TIMEOUT=10s", "BATCH_SIZE=50")
	clients := faultSignup(t, a.URL, "drain-worker", 4)
	l := newFaultLedger()
	ld := startLoad(t, s, clients, l, "drain-worker")
	waitFor(t, 10*time.Second, "the worker to store some", func() bool { return s.countAttempts(t) > 100 })

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
	ld.halt()
	s.startWorker(t, worker.Config{})
	s.waitDrained(t, 20*time.Second)
	faultCheckStored(t, s, l)
	t.Logf("worker drained and exited %s after SIGTERM; %d attempts stored", took.Round(time.Millisecond), l.len())
}
