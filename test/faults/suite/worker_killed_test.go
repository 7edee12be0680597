//go:build faults

package suite

import (
	"math/rand/v2"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
)

// TestFaultWorkerKilled SIGKILLs worker processes at random moments under
// load, five times, each replaced at once by a new process. A killed
// worker cannot Nak: its batch comes back after AckWait (2s).
func TestFaultWorkerKilled(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{AckWait: 2 * time.Second})
	a := s.StartAPI(t, faults.API(api.Config{}))
	students := faults.Students(t, a.URL, "wkill", 16)
	l := faults.NewLedger()
	workers := []*exec.Cmd{s.Spawn(t, "worker"), s.Spawn(t, "worker")}
	watch := faults.StartWatch(t, s)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill moments drawn with seed %d", seed)
	load := faults.StartLoad(t, s, l, faults.LoadConfig{URLs: []string{a.URL}, Students: students, Attempts: 6000, Rate: 350, Prefix: "wkill"})

	type kill struct {
		at      time.Time
		last    uint64 // stream sequence at the kill
		pending int    // messages delivered and not acknowledged at the kill
		pid     int
	}
	var kills []kill
	const n = 5
	span := load.Duration() - 3*time.Second
	slot := span / n
	for k := range n {
		// One kill at a random moment of each fifth of the load.
		load.SleepUntil(1500*time.Millisecond + time.Duration(k)*slot + time.Duration(rng.Int64N(int64(slot))))
		i := rng.IntN(len(workers))
		st, _ := faults.State(t.Context(), s)
		victim := workers[i]
		if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill worker: %v", err)
		}
		at := time.Now()
		_ = victim.Wait() // "signal: killed"
		workers[i] = s.Spawn(t, "worker")
		kills = append(kills, kill{at: at, last: st.Last, pending: st.Pending, pid: victim.Process.Pid})
	}
	res := load.Wait(t, 2*time.Minute)
	drainFrom := time.Now()
	s.WaitDrained(t, 60*time.Second)
	drained := time.Since(drainFrom)
	watch.Sync(t)

	tally := faults.Check(t, s, l)
	t.Logf("result: %s", tally)
	t.Logf("load: %s", res)
	for k, kl := range kills {
		rec := "never"
		if at, ok := watch.SettledAt(kl.last, kl.at); ok {
			rec = at.Sub(kl.at).Round(time.Millisecond).String()
		}
		t.Logf("kill %d at %s: worker pid %d SIGKILLed (%d messages in flight to the workers then); everything accepted before it stored and acked %s after it",
			k+1, kl.at.Sub(res.Start).Round(time.Millisecond), kl.pid, kl.pending, rec)
	}
	deliveries, redelivered := faults.Redeliveries(t, s)
	t.Logf("recovery: backlog drained %s after the load ended; deliveries %d, redeliveries %d (AckWait %s)",
		drained.Round(time.Millisecond), deliveries, redelivered, s.Stream.AckWait)
}
