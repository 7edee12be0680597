//go:build faults

package suite

import (
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
)

// TestFaultDatabaseUnreachable10s cuts PostgreSQL off (through a TCP proxy
// that the API and worker processes use) for 10s under load: attempt POSTs
// must keep answering 202 throughout, and the workers must then store the
// backlog exactly once.
func TestFaultDatabaseUnreachable10s(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{AckWait: 2 * time.Second})
	proxy, ps := faults.Proxied(t, s)
	// Tokens are confirmed with PostgreSQL every 2s, so within the cut every
	// POST's token check fails and falls back on the cached session.
	_, a := ps.SpawnAPI(t, "", "TOKEN_CACHE_TTL=2s")
	ps.Spawn(t, "worker")
	ps.Spawn(t, "worker")
	students := faults.Students(t, a, "dbcut", 16)
	l := faults.NewLedger()
	watch := faults.StartWatch(t, s)
	load := faults.StartLoad(t, s, l, faults.LoadConfig{URLs: []string{a}, Students: students, Attempts: 6000, Rate: 300, Prefix: "dbcut"})

	load.SleepUntil(4 * time.Second)
	atCut, _ := faults.State(t.Context(), s)
	cutAt := time.Now()
	proxy.Cut()
	load.SleepUntil(14 * time.Second)
	atRestore, err := faults.State(t.Context(), s)
	if err != nil {
		t.Fatalf("stream state at the restore: %v", err)
	}
	restoreAt := time.Now()
	proxy.Restore()
	res := load.Wait(t, 2*time.Minute)
	s.WaitDrained(t, 60*time.Second)
	watch.Sync(t)

	tally := faults.Check(t, s, l)
	t.Logf("result: %s", tally)
	t.Logf("load: %s", res)
	if res.Statuses[http.StatusAccepted] != res.Requests {
		t.Errorf("%d of %d attempt POSTs did not answer 202 (statuses %v, transport errors %d); POSTs must not need PostgreSQL",
			res.Requests-res.Statuses[http.StatusAccepted], res.Requests, res.Statuses, res.TransportErrors)
	}
	inCut := load.Latencies(cutAt, restoreAt)
	if len(inCut) < 1000 {
		t.Errorf("only %d POSTs inside the 10s cut; the load did not run through the outage", len(inCut))
	}
	drain := "never"
	if at, ok := watch.SettledAt(atRestore.Last, restoreAt); ok {
		drain = at.Sub(restoreAt).Round(time.Millisecond).String()
	} else {
		t.Error("the backlog accepted during the cut was never stored")
	}
	// Nothing can commit while PostgreSQL is cut off, so nothing may be
	// acked or terminated either: the ack floor stands still.
	if inside := watch.Between(cutAt.Add(time.Second), restoreAt); len(inside) > 0 {
		if first, last := inside[0].Floor, inside[len(inside)-1].Floor; first != last {
			t.Errorf("the ack floor moved from %d to %d while PostgreSQL was unreachable: attempts acked or terminated without being stored", first, last)
		}
	}
	deliveries, redelivered := faults.Redeliveries(t, s)
	t.Logf("POSTs during the %s cut: %d, all 202 (p50 %s, p99 %s)", restoreAt.Sub(cutAt).Round(time.Millisecond),
		len(inCut), faults.Percentile(inCut, 0.5), faults.Percentile(inCut, 0.99))
	t.Logf("recovery: backlog of %d events at the restore (ack floor %d at the cut, %d at the restore) stored and acked %s after it; deliveries %d, redeliveries %d (AckWait %s, batches held through the cut by InProgress)",
		atRestore.Last-atRestore.Floor, atCut.Floor, atRestore.Floor, drain, deliveries, redelivered, s.Stream.AckWait)
	if redelivered > 1000 {
		t.Errorf("%d redeliveries: batches held through the outage were handed to other workers", redelivered)
	}
}
