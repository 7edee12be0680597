//go:build faults

package suite

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/natsserver"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
)

// TestFaultNATSRestart shuts the NATS server down under load and starts a
// new one 4s later on the same port and store directory (sync always). In
// the gap the API (PUBLISH_TIMEOUT 1s) answers 503 and never 202; the API
// and worker processes reconnect by themselves; students retrying with the
// same key end with exactly one stored attempt each.
func TestFaultNATSRestart(t *testing.T) {
	port := faults.Port(t)
	dir := t.TempDir()
	var current atomic.Pointer[server.Server]
	startNATS := func() *server.Server {
		ns, err := natsserver.StartServer(natsserver.ServerConfig{Dir: dir, Port: port, SyncAlways: true, Name: "quizstream-restart"})
		if err != nil {
			t.Fatal(err)
		}
		current.Store(ns)
		return ns
	}
	ns := startNATS()
	t.Cleanup(func() { // after the processes (cleanups run last first)
		if ns := current.Load(); ns != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	})
	s := apptest.NewOn(t, ns.ClientURL(), streams.StreamConfig{AckWait: 2 * time.Second})
	_, a := s.SpawnAPI(t, "", "PUBLISH_TIMEOUT=1s")
	workerOps := []string{apptest.FreeAddr(t), apptest.FreeAddr(t)}
	for _, ops := range workerOps {
		s.Spawn(t, "worker", "METRICS_ADDR="+ops)
	}
	students := faults.Students(t, a, "natsrestart", 32)
	l := faults.NewLedger()
	watch := faults.StartWatch(t, s)
	load := faults.StartLoad(t, s, l, faults.LoadConfig{URLs: []string{a}, Students: students, Attempts: 6000, Rate: 300, Prefix: "natsrestart"})

	load.SleepUntil(6 * time.Second)
	before, err := faults.State(t.Context(), s)
	if err != nil {
		t.Fatalf("stream state before the restart: %v", err)
	}
	downFrom := time.Now()
	ns.Shutdown()
	ns.WaitForShutdown()
	current.Store(nil)
	downAt := time.Now()
	load.SleepUntil(10 * time.Second)
	upFrom := time.Now()
	startNATS()
	upAt := time.Now()

	res := load.Wait(t, 2*time.Minute)
	s.WaitDrained(t, 60*time.Second)
	watch.Sync(t)

	tally := faults.Check(t, s, l)
	t.Logf("result: %s", tally)
	t.Logf("load: %s", res)

	// No PubAck can exist while no server runs; a response in flight at
	// the shutdown may still arrive just after it.
	var inGap, unavailable int
	for _, r := range load.Requests() {
		if r.Status == http.StatusAccepted && r.End.After(downAt.Add(100*time.Millisecond)) && r.End.Before(upFrom) {
			if inGap++; inGap <= 10 {
				t.Errorf("attempt %d answered 202 at %s, while no NATS server ran (%s to %s)", r.Attempt,
					r.End.Sub(res.Start).Round(time.Millisecond), downAt.Sub(res.Start).Round(time.Millisecond), upFrom.Sub(res.Start).Round(time.Millisecond))
			}
		}
		// In flight while no server ran, and refused: whether it was sent
		// before the shutdown, or its 503 came after the restart (a slow
		// one), does not matter here.
		if r.Status == http.StatusServiceUnavailable && r.Start.Before(upFrom) && r.End.After(downAt) {
			unavailable++
		}
	}
	if inGap > 0 {
		t.Errorf("%d attempts answered 202 with no NATS server running: a 202 without a PubAck", inGap)
	}
	if unavailable == 0 {
		t.Error("no POST in flight while NATS was down answered 503: the gap did not hit the load")
	}
	if res.TransportErrors > 0 {
		t.Errorf("%d transport errors: the API process should have stayed up through the restart", res.TransportErrors)
	}
	// Both processes are still serving: they reconnected by themselves.
	if status, _, err := faults.Read(t.Context(), apptest.Client(a), "/readyz"); err != nil || status != http.StatusOK {
		t.Errorf("API /readyz after the restart: %d %v", status, err)
	}
	for i, ops := range workerOps {
		if status, _, err := faults.Read(t.Context(), apptest.Client("http://"+ops), "/readyz"); err != nil || status != http.StatusOK {
			t.Errorf("worker %d /readyz after the restart: %d %v", i, status, err)
		}
	}
	settled := "never"
	if at, ok := watch.SettledAt(before.Last, upAt); ok {
		settled = at.Sub(upAt).Round(time.Millisecond).String()
	}
	deliveries, redelivered := faults.Redeliveries(t, s)
	t.Logf("restart: shutdown took %s, server down %s, new server ready %s after start; 503s to POSTs in flight during the gap: %d, 202s inside it: %d",
		downAt.Sub(downFrom).Round(time.Millisecond), upFrom.Sub(downAt).Round(time.Millisecond), upAt.Sub(upFrom).Round(time.Millisecond), unavailable, inGap)
	gap, _ := load.LongestGap()
	t.Logf("recovery: every student had a 202 again %s after the new server was ready; longest time without any 202 %s; everything accepted before the shutdown acked %s after the restart; deliveries %d, redeliveries %d",
		load.ServedAgain(upAt).Round(time.Millisecond), gap.Round(time.Millisecond), settled, deliveries, redelivered)
}
