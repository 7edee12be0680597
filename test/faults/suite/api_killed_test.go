//go:build faults

package suite

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
	"github.com/quizstream/quizstream/worker"
)

// TestFaultAPIKilled runs the API as two processes and SIGKILLs one of them
// three times under load (A, then B, then A), each restarted on its address
// a second later. Students on the killed instance fail over to the other
// and retry with the same key: what the killed process published but never
// answered is answered by the other from the stream.
func TestFaultAPIKilled(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	s.StartWorker(t, worker.Config{})
	addrs := []string{apptest.FreeAddr(t), apptest.FreeAddr(t)}
	procs := make([]*exec.Cmd, len(addrs))
	urls := make([]string, len(addrs))
	for i, addr := range addrs {
		procs[i], urls[i] = s.SpawnAPI(t, addr)
	}
	students := faults.Students(t, urls[0], "akill", 16)
	l := faults.NewLedger()
	load := faults.StartLoad(t, s, l, faults.LoadConfig{URLs: urls, Students: students, Attempts: 9000, Rate: 1000, Prefix: "akill"})

	type kill struct {
		victim        int
		at, restarted time.Time
	}
	var kills []kill
	for k, at := range []time.Duration{2 * time.Second, 5 * time.Second, 8 * time.Second} {
		i := k % len(procs)
		load.SleepUntil(at)
		if err := procs[i].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill api: %v", err)
		}
		kl := kill{victim: i, at: time.Now()}
		_ = procs[i].Wait()
		load.SleepUntil(at + time.Second)
		procs[i], _ = s.SpawnAPI(t, addrs[i])
		kl.restarted = time.Now()
		kills = append(kills, kl)
	}
	res := load.Wait(t, 2*time.Minute)
	s.WaitDrained(t, 60*time.Second)

	tally := faults.Check(t, s, l)
	t.Logf("result: %s", tally)
	t.Logf("load: %s", res)
	for k, kl := range kills {
		t.Logf("kill %d at %s: API %c SIGKILLed, restarted and ready %s later; every student had a 202 again %s after the kill",
			k+1, kl.at.Sub(res.Start).Round(time.Millisecond), 'A'+kl.victim,
			kl.restarted.Sub(kl.at).Round(time.Millisecond), load.ServedAgain(kl.at).Round(time.Millisecond))
	}
	gap, gapAt := load.LongestGap()
	t.Logf("recovery: longest time without any 202: %s (at %s); transport errors answered by failing over: %d; attempts published by a killed instance and answered by another from the stream: %d",
		gap.Round(time.Millisecond), gapAt.Sub(res.Start).Round(time.Millisecond), res.TransportErrors, res.FromEarlierTry)
	if res.TransportErrors == 0 {
		t.Error("no request met a killed API: the kills did not hit the load")
	}
}
