//go:build faults

package main

// The fault suite (make test-faults). Each test drives a steady load of
// thousands of attempts through the real HTTP API, students sending
// Idempotency-Keys and retrying on 503 or a transport error with the same
// key (as API.md tells clients to), injects one fault, and then compares
// PostgreSQL with what the clients were told: every attempt a client got a
// 202 for is stored, none twice, each with the score and submitted_at of
// its 202 body. The tests run one after the other: on a 2-core machine the
// load, the API, the workers, NATS and PostgreSQL already share the CPUs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/worker"
)

// TestFaultWorkerKilled SIGKILLs worker processes at random moments under
// load, five times, each replaced at once by a new process. A killed
// worker cannot Nak: its batch comes back after AckWait (2s).
func TestFaultWorkerKilled(t *testing.T) {
	s := newStack(t, events.StreamConfig{AckWait: 2 * time.Second})
	a := s.startAPI(t, api.Config{})
	students := faultSignup(t, a.URL, "wkill", 16)
	l := newFaultLedger()
	workers := []*exec.Cmd{s.faultSpawnWorker(t), s.faultSpawnWorker(t)}
	watch := startFaultWatch(t, s)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill moments drawn with seed %d", seed)
	load := startFaultLoad(t, s, l, faultLoadConfig{URLs: []string{a.URL}, Students: students, Attempts: 6000, Rate: 350, Prefix: "wkill"})

	type kill struct {
		at      time.Time
		last    uint64 // stream sequence at the kill
		pending int    // messages delivered and not acknowledged at the kill
		pid     int
	}
	var kills []kill
	const n = 5
	span := load.duration() - 3*time.Second
	slot := span / n
	for k := range n {
		// One kill at a random moment of each fifth of the load.
		load.sleepUntil(1500*time.Millisecond + time.Duration(k)*slot + time.Duration(rng.Int64N(int64(slot))))
		i := rng.IntN(len(workers))
		st, _ := faultState(t.Context(), s)
		victim := workers[i]
		if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill worker: %v", err)
		}
		at := time.Now()
		_ = victim.Wait() // "signal: killed"
		workers[i] = s.faultSpawnWorker(t)
		kills = append(kills, kill{at: at, last: st.last, pending: st.pending, pid: victim.Process.Pid})
	}
	res := load.wait(t, 2*time.Minute)
	drainFrom := time.Now()
	s.waitDrained(t, 60*time.Second)
	drained := time.Since(drainFrom)
	watch.sync(t)

	tally := faultCheckStored(t, s, l)
	faultReportTally(t, tally)
	t.Logf("load: %s", res)
	for k, kl := range kills {
		rec := "never"
		if at, ok := watch.settledAt(kl.last, kl.at); ok {
			rec = at.Sub(kl.at).Round(time.Millisecond).String()
		}
		t.Logf("kill %d at %s: worker pid %d SIGKILLed (%d messages in flight to the workers then); everything accepted before it stored and acked %s after it",
			k+1, kl.at.Sub(res.Start).Round(time.Millisecond), kl.pid, kl.pending, rec)
	}
	deliveries, redelivered := faultRedeliveries(t, s)
	t.Logf("recovery: backlog drained %s after the load ended; deliveries %d, redeliveries %d (AckWait %s)",
		drained.Round(time.Millisecond), deliveries, redelivered, s.Stream.AckWait)
}

// TestFaultAPIKilled runs the API as two processes and SIGKILLs one of them
// three times under load (A, then B, then A), each restarted on its address
// a second later. Students on the killed instance fail over to the other
// and retry with the same key: what the killed process published but never
// answered is answered by the other from the stream.
func TestFaultAPIKilled(t *testing.T) {
	s := newStack(t, events.StreamConfig{})
	s.startWorker(t, worker.Config{})
	addrs := []string{freeAddr(t), freeAddr(t)}
	procs := make([]*exec.Cmd, len(addrs))
	urls := make([]string, len(addrs))
	for i, addr := range addrs {
		procs[i] = s.faultSpawnAPI(t, addr)
		urls[i] = "http://" + addr
	}
	students := faultSignup(t, urls[0], "akill", 16)
	l := newFaultLedger()
	load := startFaultLoad(t, s, l, faultLoadConfig{URLs: urls, Students: students, Attempts: 9000, Rate: 1000, Prefix: "akill"})

	type kill struct {
		victim        int
		at, restarted time.Time
	}
	var kills []kill
	for k, at := range []time.Duration{2 * time.Second, 5 * time.Second, 8 * time.Second} {
		i := k % len(procs)
		load.sleepUntil(at)
		if err := procs[i].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill api: %v", err)
		}
		kl := kill{victim: i, at: time.Now()}
		_ = procs[i].Wait()
		load.sleepUntil(at + time.Second)
		procs[i] = s.faultSpawnAPI(t, addrs[i])
		kl.restarted = time.Now()
		kills = append(kills, kl)
	}
	res := load.wait(t, 2*time.Minute)
	s.waitDrained(t, 60*time.Second)

	tally := faultCheckStored(t, s, l)
	faultReportTally(t, tally)
	t.Logf("load: %s", res)
	for k, kl := range kills {
		t.Logf("kill %d at %s: API %c SIGKILLed, restarted and ready %s later; every student had a 202 again %s after the kill",
			k+1, kl.at.Sub(res.Start).Round(time.Millisecond), 'A'+kl.victim,
			kl.restarted.Sub(kl.at).Round(time.Millisecond), load.servedAgain(kl.at).Round(time.Millisecond))
	}
	gap, gapAt := load.longestGap()
	t.Logf("recovery: longest time without any 202: %s (at %s); transport errors answered by failing over: %d; attempts published by a killed instance and answered by another from the stream: %d",
		gap.Round(time.Millisecond), gapAt.Sub(res.Start).Round(time.Millisecond), res.TransportErrors, res.FromEarlierTry)
	if res.TransportErrors == 0 {
		t.Error("no request met a killed API: the kills did not hit the load")
	}
}

// TestFaultDatabaseUnreachable10s cuts PostgreSQL off (through a TCP proxy
// that the API and worker processes use) for 10s under load: attempt POSTs
// must keep answering 202 throughout, and the workers must then store the
// backlog exactly once.
func TestFaultDatabaseUnreachable10s(t *testing.T) {
	s := newStack(t, events.StreamConfig{AckWait: 2 * time.Second})
	proxy, ps := faultProxied(t, s)
	// Tokens are confirmed with PostgreSQL every 2s, so within the cut every
	// POST's token check fails and falls back on the cached session.
	a := ps.faultAPI(t, "TOKEN_CACHE_TTL=2s")
	ps.faultSpawnWorker(t)
	ps.faultSpawnWorker(t)
	students := faultSignup(t, a, "dbcut", 16)
	l := newFaultLedger()
	watch := startFaultWatch(t, s)
	load := startFaultLoad(t, s, l, faultLoadConfig{URLs: []string{a}, Students: students, Attempts: 6000, Rate: 300, Prefix: "dbcut"})

	load.sleepUntil(4 * time.Second)
	atCut, _ := faultState(t.Context(), s)
	cutAt := time.Now()
	proxy.Cut()
	load.sleepUntil(14 * time.Second)
	atRestore, err := faultState(t.Context(), s)
	if err != nil {
		t.Fatalf("stream state at the restore: %v", err)
	}
	restoreAt := time.Now()
	proxy.Restore()
	res := load.wait(t, 2*time.Minute)
	s.waitDrained(t, 60*time.Second)
	watch.sync(t)

	tally := faultCheckStored(t, s, l)
	faultReportTally(t, tally)
	t.Logf("load: %s", res)
	if res.Statuses[http.StatusAccepted] != res.Requests {
		t.Errorf("%d of %d attempt POSTs did not answer 202 (statuses %v, transport errors %d); POSTs must not need PostgreSQL",
			res.Requests-res.Statuses[http.StatusAccepted], res.Requests, res.Statuses, res.TransportErrors)
	}
	inCut := load.latencies(cutAt, restoreAt)
	if len(inCut) < 1000 {
		t.Errorf("only %d POSTs inside the 10s cut; the load did not run through the outage", len(inCut))
	}
	drain := "never"
	if at, ok := watch.settledAt(atRestore.last, restoreAt); ok {
		drain = at.Sub(restoreAt).Round(time.Millisecond).String()
	} else {
		t.Error("the backlog accepted during the cut was never stored")
	}
	// Nothing can commit while PostgreSQL is cut off, so nothing may be
	// acked or terminated either: the ack floor stands still.
	if inside := watch.between(cutAt.Add(time.Second), restoreAt); len(inside) > 0 {
		if first, last := inside[0].floor, inside[len(inside)-1].floor; first != last {
			t.Errorf("the ack floor moved from %d to %d while PostgreSQL was unreachable: attempts acked or terminated without being stored", first, last)
		}
	}
	deliveries, redelivered := faultRedeliveries(t, s)
	t.Logf("POSTs during the %s cut: %d, all 202 (p50 %s, p99 %s)", restoreAt.Sub(cutAt).Round(time.Millisecond),
		len(inCut), faultPercentile(inCut, 0.5), faultPercentile(inCut, 0.99))
	t.Logf("recovery: backlog of %d events at the restore (ack floor %d at the cut, %d at the restore) stored and acked %s after it; deliveries %d, redeliveries %d (AckWait %s, batches held through the cut by InProgress)",
		atRestore.last-atRestore.floor, atCut.floor, atRestore.floor, drain, deliveries, redelivered, s.Stream.AckWait)
	if redelivered > 1000 {
		t.Errorf("%d redeliveries: batches held through the outage were handed to other workers", redelivered)
	}
}

// TestFaultNATSRestart shuts the NATS server down under load and starts a
// new one 4s later on the same port and store directory (sync always). In
// the gap the API (PUBLISH_TIMEOUT 1s) answers 503 and never 202; the API
// and worker processes reconnect by themselves; students retrying with the
// same key end with exactly one stored attempt each.
func TestFaultNATSRestart(t *testing.T) {
	port := faultPort(t)
	dir := t.TempDir()
	var current atomic.Pointer[server.Server]
	startNATS := func() *server.Server {
		ns, err := events.StartServer(events.ServerConfig{Dir: dir, Port: port, SyncAlways: true, Name: "quizstream-restart"})
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
	s := newFaultStack(t, ns.ClientURL(), events.StreamConfig{AckWait: 2 * time.Second})
	s.NATS = ns
	a := s.faultAPI(t, "PUBLISH_TIMEOUT=1s")
	workerOps := []string{freeAddr(t), freeAddr(t)}
	for _, ops := range workerOps {
		s.faultSpawnWorker(t, "METRICS_ADDR="+ops)
	}
	students := faultSignup(t, a, "natsrestart", 32)
	l := newFaultLedger()
	watch := startFaultWatch(t, s)
	load := startFaultLoad(t, s, l, faultLoadConfig{URLs: []string{a}, Students: students, Attempts: 6000, Rate: 300, Prefix: "natsrestart"})

	load.sleepUntil(6 * time.Second)
	before, err := faultState(t.Context(), s)
	if err != nil {
		t.Fatalf("stream state before the restart: %v", err)
	}
	downFrom := time.Now()
	ns.Shutdown()
	ns.WaitForShutdown()
	current.Store(nil)
	downAt := time.Now()
	load.sleepUntil(10 * time.Second)
	upFrom := time.Now()
	ns = startNATS()
	upAt := time.Now()
	s.NATS = ns

	res := load.wait(t, 2*time.Minute)
	s.waitDrained(t, 60*time.Second)
	watch.sync(t)

	tally := faultCheckStored(t, s, l)
	faultReportTally(t, tally)
	t.Logf("load: %s", res)

	// No PubAck can exist while no server runs; a response in flight at
	// the shutdown may still arrive just after it.
	var inGap, unavailable int
	for _, r := range load.requests() {
		if r.status == http.StatusAccepted && r.end.After(downAt.Add(100*time.Millisecond)) && r.end.Before(upFrom) {
			if inGap++; inGap <= 10 {
				t.Errorf("attempt %d answered 202 at %s, while no NATS server ran (%s to %s)", r.attempt,
					r.end.Sub(res.Start).Round(time.Millisecond), downAt.Sub(res.Start).Round(time.Millisecond), upFrom.Sub(res.Start).Round(time.Millisecond))
			}
		}
		if r.status == http.StatusServiceUnavailable && r.start.After(downAt) && r.end.Before(upFrom) {
			unavailable++
		}
	}
	if inGap > 0 {
		t.Errorf("%d attempts answered 202 with no NATS server running: a 202 without a PubAck", inGap)
	}
	if unavailable == 0 {
		t.Error("no POST answered 503 while NATS was down: the gap did not hit the load")
	}
	if res.TransportErrors > 0 {
		t.Errorf("%d transport errors: the API process should have stayed up through the restart", res.TransportErrors)
	}
	// Both processes are still serving: they reconnected by themselves.
	if status, _, err := (&client{base: a, http: httpClient}).faultRead("/readyz"); err != nil || status != http.StatusOK {
		t.Errorf("API /readyz after the restart: %d %v", status, err)
	}
	for i, ops := range workerOps {
		if status, _, err := (&client{base: "http://" + ops, http: httpClient}).faultRead("/readyz"); err != nil || status != http.StatusOK {
			t.Errorf("worker %d /readyz after the restart: %d %v", i, status, err)
		}
	}
	settled := "never"
	if at, ok := watch.settledAt(before.last, upAt); ok {
		settled = at.Sub(upAt).Round(time.Millisecond).String()
	}
	deliveries, redelivered := faultRedeliveries(t, s)
	t.Logf("restart: shutdown took %s, server down %s, new server ready %s after start; 503s inside the gap: %d, 202s inside it: %d",
		downAt.Sub(downFrom).Round(time.Millisecond), upFrom.Sub(downAt).Round(time.Millisecond), upAt.Sub(upFrom).Round(time.Millisecond), unavailable, inGap)
	gap, _ := load.longestGap()
	t.Logf("recovery: every student had a 202 again %s after the new server was ready; longest time without any 202 %s; everything accepted before the shutdown acked %s after the restart; deliveries %d, redeliveries %d",
		load.servedAgain(upAt).Round(time.Millisecond), gap.Round(time.Millisecond), settled, deliveries, redelivered)
}

// TestFaultClusterNodeLost runs a 3-node JetStream cluster with an R3
// stream, loses the stream leader under load and brings it back 8s later
// (same name, ports and store directory). "shutdown" stops an in-process
// server (a clean stop: it hands its leaderships over first); "sigkill"
// runs each node as a process of its own and SIGKILLs it (a crash: the
// others must elect a leader). Clients retry the 503s of the election
// with the same key; nothing acknowledged is lost, and the returning node
// catches up.
func TestFaultClusterNodeLost(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) { faultClusterNodeLost(t, false) })
	t.Run("sigkill", func(t *testing.T) { faultClusterNodeLost(t, true) })
}

func faultClusterNodeLost(t *testing.T, crash bool) {
	nodes := faultCluster(t, 3, crash)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	s := newFaultStack(t, strings.Join(urls, ","), events.StreamConfig{Replicas: 3, AckWait: 3 * time.Second})
	a := s.faultAPI(t)
	s.faultSpawnWorker(t, "WORKERS=2")
	students := faultSignup(t, a, "cluster", 32)
	l := newFaultLedger()
	load := startFaultLoad(t, s, l, faultLoadConfig{URLs: []string{a}, Students: students, Attempts: 6000, Rate: 250, Prefix: "cluster"})

	load.sleepUntil(6 * time.Second)
	info := faultStreamInfo(t, s)
	victim := slices.IndexFunc(nodes, func(n *faultNode) bool { return n.cfg.Name == info.Cluster.Leader })
	if victim < 0 {
		t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	}
	consumerLeader := "?"
	if ci, err := faultConsumerInfo(t.Context(), s); err == nil && ci.Cluster != nil {
		consumerLeader = ci.Cluster.Leader
	}
	clients := nodes[victim].clients()
	lostAt := time.Now()
	nodes[victim].stop(t)
	var elected time.Time
	waitFor(t, 30*time.Second, "a new stream leader", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		st, err := s.JS.Stream(ctx, s.Stream.Name)
		if err != nil {
			return false
		}
		if c := st.CachedInfo().Cluster; c != nil && c.Leader != "" && c.Leader != nodes[victim].cfg.Name {
			elected = time.Now()
			return true
		}
		return false
	})
	load.sleepUntil(14 * time.Second)
	backAt := time.Now()
	nodes[victim].start(t)
	var caughtUp time.Time
	waitFor(t, 60*time.Second, nodes[victim].cfg.Name+" to be a current replica again", func() bool {
		ok := faultReplicaCurrent(t, s, nodes[victim].cfg.Name, false)
		if ok {
			caughtUp = time.Now()
		}
		return ok
	})
	res := load.wait(t, 2*time.Minute)
	s.waitDrained(t, 60*time.Second)
	waitFor(t, 30*time.Second, nodes[victim].cfg.Name+" to hold everything", func() bool {
		return faultReplicaCurrent(t, s, nodes[victim].cfg.Name, true)
	})

	tally := faultCheckStored(t, s, l)
	faultReportTally(t, tally)
	t.Logf("load: %s", res)
	gap, gapAt := load.longestGap()
	deliveries, redelivered := faultRedeliveries(t, s)
	how := "shut down"
	if crash {
		how = "SIGKILLed"
	}
	t.Logf("node lost: %s (stream leader; consumer leader %s; %s of the API's and worker's connections) %s at %s; new stream leader seen %s later; every student had a 202 again %s after the loss; longest time without any 202 %s (at %s)",
		nodes[victim].cfg.Name, consumerLeader, clients, how, lostAt.Sub(res.Start).Round(time.Millisecond), elected.Sub(lostAt).Round(time.Millisecond),
		load.servedAgain(lostAt).Round(time.Millisecond), gap.Round(time.Millisecond), gapAt.Sub(res.Start).Round(time.Millisecond))
	t.Logf("node back at %s: a current replica %s after its restart, and with no lag once the load ended; deliveries %d, redeliveries %d",
		backAt.Sub(res.Start).Round(time.Millisecond), caughtUp.Sub(backAt).Round(time.Millisecond), deliveries, redelivered)
}

// faultReplicaCurrent reports whether the stream leader sees the named
// server as an online, current replica (and with no lag, when exact).
func faultReplicaCurrent(t *testing.T, s *stack, name string, exact bool) bool {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	st, err := s.JS.Stream(ctx, s.Stream.Name)
	if err != nil || st.CachedInfo().Cluster == nil {
		return false
	}
	for _, p := range st.CachedInfo().Cluster.Replicas {
		if p.Name == name {
			return p.Current && !p.Offline && (!exact || p.Lag == 0)
		}
	}
	return false
}

// faultNode is one server of a test cluster: in this process (stopped by
// Shutdown) or a process of its own (stopped by SIGKILL).
type faultNode struct {
	cfg     events.ServerConfig
	process bool

	mu  sync.Mutex
	ns  *server.Server
	cmd *exec.Cmd
}

// faultCluster starts n servers forming one JetStream cluster on loopback
// ports, each with a store directory of its own; they stop when t ends.
func faultCluster(t *testing.T, n int, processes bool) []*faultNode {
	t.Helper()
	nodes := make([]*faultNode, n)
	var routes []string
	for i := range nodes {
		nodes[i] = &faultNode{process: processes, cfg: events.ServerConfig{Dir: t.TempDir(), Port: faultPort(t),
			Name: fmt.Sprintf("quizstream-n%d", i+1), Cluster: &events.ClusterConfig{Name: "quizstream-faults", Port: faultPort(t)}}}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nodes[i].cfg.Cluster.Port))
	}
	for _, nd := range nodes {
		nd.cfg.Cluster.Routes = routes
		t.Cleanup(func() { nd.stop(t) })
	}
	var wg sync.WaitGroup
	for _, nd := range nodes { // together: none has a quorum alone
		wg.Go(func() { nd.start(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

func (n *faultNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.cfg.Port) }

// start starts the node and waits until it accepts connections; it may
// run in a goroutine of its own (it fails t with Error, not Fatal).
func (n *faultNode) start(t *testing.T) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.process {
		ns, err := events.StartServer(n.cfg)
		if err != nil {
			t.Errorf("start %s: %v", n.cfg.Name, err)
			return
		}
		n.ns = ns
		return
	}
	cfg, err := json.Marshal(n.cfg)
	if err != nil {
		t.Error(err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNATSNode$", "-test.timeout=20m")
	cmd.Env = append(os.Environ(), "QUIZSTREAM_FAULT_NATS_NODE="+string(cfg))
	cmd.Stderr = tWriter{t}
	// The node stops when this pipe closes: when the test process ends,
	// however it ends, no server is left behind.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Error(err)
		return
	}
	if err := cmd.Start(); err != nil {
		t.Errorf("start %s: %v", n.cfg.Name, err)
		return
	}
	n.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.cfg.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s does not accept connections after 30s: %v", n.cfg.Name, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the in-process server down, or SIGKILLs the node's process.
func (n *faultNode) stop(t *testing.T) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
		n.ns = nil
	}
	if n.cmd != nil {
		if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Errorf("kill %s: %v", n.cfg.Name, err)
		}
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// clients says how many of the quizstream processes' connections
// (connection name "quizstream") the node holds, when it can tell.
func (n *faultNode) clients() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ns == nil {
		return "an unknown number"
	}
	cz, err := n.ns.Connz(&server.ConnzOptions{Limit: 1024})
	if err != nil {
		return "an unknown number"
	}
	var k int
	for _, c := range cz.Conns {
		if c.Name == "quizstream" {
			k++
		}
	}
	return strconv.Itoa(k)
}

// TestHelperNATSNode is not a test: faultNode runs it as a process of its
// own, one NATS server that a test can SIGKILL, configured by
// $QUIZSTREAM_FAULT_NATS_NODE; it serves until its stdin closes.
func TestHelperNATSNode(t *testing.T) {
	raw := os.Getenv("QUIZSTREAM_FAULT_NATS_NODE")
	if raw == "" {
		t.Skip("a NATS server process run by the fault suite")
	}
	var cfg events.ServerConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	ns, err := events.StartServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestFaultSlowDatabase puts 50ms of latency each way between the service
// and PostgreSQL and sends a burst of attempts: POST latency must not
// follow the database (the stream absorbs the burst), and the backlog
// drains with the latency still on. A batch then takes longer than
// AckWait (400ms here): only the workers' InProgress heartbeats keep their
// batches from being redelivered to each other again and again.
func TestFaultSlowDatabase(t *testing.T) {
	const delay = 50 * time.Millisecond
	s := newStack(t, events.StreamConfig{AckWait: 400 * time.Millisecond})
	proxy, ps := faultProxied(t, s)
	a := ps.faultAPI(t)
	ops := freeAddr(t)
	ps.faultSpawnWorker(t, "WORKERS=2", "METRICS_ADDR="+ops)
	students := faultSignup(t, a, "slowdb", 16)
	l := newFaultLedger()
	watch := startFaultWatch(t, s)

	// Baseline: the same burst shape on a fast database.
	base := startFaultLoad(t, s, l, faultLoadConfig{URLs: []string{a}, Students: students, Attempts: 1000, Prefix: "slowdb-base"})
	baseRes := base.wait(t, time.Minute)
	s.waitDrained(t, 30*time.Second)
	baseLat := base.latencies(time.Time{}, time.Now())
	d0, r0 := faultRedeliveries(t, s)
	sum0, n0 := faultBatchSeconds(t, ops)

	proxy.SetDelay(delay)
	rtt := faultDatabaseRTT(t, ps.DBURL)
	burst := startFaultLoad(t, s, l, faultLoadConfig{URLs: []string{a}, Students: students, Attempts: 5000, Prefix: "slowdb-burst"})
	burstRes := burst.wait(t, 2*time.Minute)
	atEnd, err := faultState(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	endAt := time.Now()
	var drained time.Duration
	waitFor(t, 60*time.Second, "the backlog to drain with the database still slow", func() bool {
		st, err := faultState(t.Context(), s)
		drained = time.Since(endAt)
		return err == nil && st.floor >= atEnd.last
	})
	proxy.SetDelay(0)
	s.waitDrained(t, 10*time.Second)
	burstLat := burst.latencies(time.Time{}, time.Now())
	d1, r1 := faultRedeliveries(t, s)
	sum1, n1 := faultBatchSeconds(t, ops)
	batch := time.Duration((sum1 - sum0) / (n1 - n0) * float64(time.Second))

	tally := faultCheckStored(t, s, l)
	faultReportTally(t, tally)
	var backlog uint64
	for _, smp := range watch.between(burstRes.Start, endAt) {
		backlog = max(backlog, smp.last-min(smp.floor, smp.last))
	}
	t.Logf("baseline: %s; POST p50 %s, p99 %s", baseRes, faultPercentile(baseLat, 0.5), faultPercentile(baseLat, 0.99))
	t.Logf("burst with %s each way (a query round trip %s): %s; POST p50 %s, p99 %s", delay, rtt.Round(time.Millisecond),
		burstRes, faultPercentile(burstLat, 0.5), faultPercentile(burstLat, 0.99))
	t.Logf("stream absorbed the burst: largest backlog %d events, %d left at the burst's end, drained %s after it with the latency on (%.0f events/s, a batch %s on average); deliveries %d, redeliveries %d (before the delay: %d, %d; AckWait %s)",
		backlog, atEnd.last-atEnd.floor, drained.Round(time.Millisecond), float64(atEnd.last-atEnd.floor)/drained.Seconds(), batch.Round(time.Millisecond),
		d1, r1, d0, r0, s.Stream.AckWait)
	if burstRes.Requests != burstRes.Statuses[http.StatusAccepted] || baseRes.Requests != baseRes.Statuses[http.StatusAccepted] {
		t.Errorf("POSTs not answered 202: baseline %v, burst %v", baseRes.Statuses, burstRes.Statuses)
	}
	// A POST that waited on PostgreSQL would take at least one round trip.
	if p50 := faultPercentile(burstLat, 0.5); p50 >= 2*delay {
		t.Errorf("POST p50 %s with the database slow, at least a database round trip (%s): the POST waits on PostgreSQL", p50, 2*delay)
	}
	if batch <= s.Stream.AckWait {
		t.Errorf("a batch took %s on average, no more than AckWait (%s): the test does not show what InProgress is for", batch, s.Stream.AckWait)
	}
	if backlog == 0 {
		t.Error("no backlog ever formed: the burst did not outrun the slow workers")
	}
	// A storm is every batch handed out again (thousands here without
	// InProgress); a batch or two redelivered once would be a slip.
	if r1-r0 > 1000 {
		t.Errorf("%d redeliveries during the slow phase: a redelivery storm", r1-r0)
	}
}

// faultLoadConfig shapes a load.
type faultLoadConfig struct {
	// URLs are API instances: student i starts on URLs[i%len(URLs)] and
	// moves to the next one after a transport error.
	URLs []string
	// Students submit the attempts, each one at a time.
	Students []*client
	// Attempts is how many distinct attempts (keys) are submitted in all.
	Attempts int
	// Rate paces new attempts, per second, for all students together
	// (open loop: attempts held up by a fault are caught up after it).
	// Zero sends them as fast as the students go.
	Rate float64
	// Prefix makes the Idempotency-Keys of this load.
	Prefix string
	// GiveUp bounds the retries of one attempt. Defaults to 45s.
	GiveUp time.Duration
}

// faultRequest is one HTTP request of a load.
type faultRequest struct {
	student, attempt, try int
	start, end            time.Time
	status                int // 0 on a transport error
	err                   error
	submitted             time.Time // submitted_at of a 202 body
}

// faultLoad is students submitting attempts and retrying them like real
// clients: on a 503 or a transport error, the same key again after a
// growing delay (50ms to 1s), until a 202 or GiveUp.
type faultLoad struct {
	cfg    faultLoadConfig
	s      *stack
	ledger *faultLedger
	http   *http.Client
	start  time.Time
	next   atomic.Int64
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	reqs     []faultRequest
	problems []string
	gaveUp   int
}

func startFaultLoad(t *testing.T, s *stack, l *faultLedger, cfg faultLoadConfig) *faultLoad {
	t.Helper()
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = 45 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: len(cfg.Students), DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}
	f := &faultLoad{cfg: cfg, s: s, ledger: l, http: &http.Client{Timeout: 15 * time.Second, Transport: tr},
		start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for i := range cfg.Students {
		wg.Go(func() { f.student(i) })
	}
	go func() { wg.Wait(); tr.CloseIdleConnections(); close(f.done) }()
	t.Cleanup(func() { // a failed test must not leave students running
		select {
		case <-f.stop:
		default:
			close(f.stop)
		}
		<-f.done
	})
	return f
}

func (f *faultLoad) student(i int) {
	c := *f.cfg.Students[i]
	c.http = f.http
	cur := i % len(f.cfg.URLs)
	for {
		n := int(f.next.Add(1) - 1)
		if n >= f.cfg.Attempts {
			return
		}
		if f.cfg.Rate > 0 && !f.sleep(time.Until(f.start.Add(time.Duration(float64(n)/f.cfg.Rate*float64(time.Second))))) {
			return
		}
		quiz := f.s.Quizzes[n%len(f.s.Quizzes)]
		answers := answersFor(quiz, n%(len(quiz.Questions)+1))
		key := fmt.Sprintf("%s-%d", f.cfg.Prefix, n)
		giveUp := time.Now().Add(f.cfg.GiveUp)
		wait := 50 * time.Millisecond
		for try := 1; ; try++ {
			c.base = f.cfg.URLs[cur]
			r := faultRequest{student: i, attempt: n, try: try, start: time.Now()}
			var body attemptBody
			r.status, body, r.err = c.submit(quiz.ID.String(), key, answers)
			r.end = time.Now()
			if r.err != nil {
				r.status = 0
			}
			r.submitted = body.SubmittedAt
			f.record(r)
			if r.status == http.StatusAccepted {
				if err := f.ledger.add(key, body); err != nil {
					f.problem(err.Error())
				}
				break
			}
			if r.status != 0 && r.status != http.StatusServiceUnavailable {
				f.problem(fmt.Sprintf("attempt %s: status %d, want 202 or 503", key, r.status))
				break
			}
			if r.status == 0 {
				cur = (cur + 1) % len(f.cfg.URLs) // fail over
			}
			if time.Now().After(giveUp) {
				f.mu.Lock()
				f.gaveUp++
				f.mu.Unlock()
				f.problem(fmt.Sprintf("attempt %s: gave up after %d tries in %s (last: status %d, %v)", key, try, f.cfg.GiveUp, r.status, r.err))
				break
			}
			if !f.sleep(wait + rand.N(wait/2)) {
				return
			}
			wait = min(2*wait, time.Second)
		}
	}
}

// sleep waits d, or returns false at once when the load is stopped.
func (f *faultLoad) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-f.stop:
		return false
	case <-tm.C:
		return true
	}
}

func (f *faultLoad) record(r faultRequest) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
}

func (f *faultLoad) problem(p string) {
	f.mu.Lock()
	f.problems = append(f.problems, p)
	f.mu.Unlock()
}

// duration is how long the paced load takes when nothing holds it up.
func (f *faultLoad) duration() time.Duration {
	if f.cfg.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(f.cfg.Attempts) / f.cfg.Rate * float64(time.Second))
}

// sleepUntil waits until d after the load's start.
func (f *faultLoad) sleepUntil(d time.Duration) { time.Sleep(time.Until(f.start.Add(d))) }

// faultLoadResult sums up a finished load.
type faultLoadResult struct {
	Start           time.Time
	Took            time.Duration
	Attempts        int
	Acknowledged    int // attempts of this load that got a 202
	Requests        int
	Statuses        map[int]int
	TransportErrors int
	Retried         int // attempts that needed more than one request
	MaxTries        int
	GaveUp          int
	// FromEarlierTry counts attempts whose 202 carried a submitted_at from
	// before the request that got it: a try that failed (503, or no
	// answer) had published it after all, and the retry read it back.
	FromEarlierTry int
}

func (r faultLoadResult) String() string {
	return fmt.Sprintf("%d attempts (%d acknowledged) in %s (%.0f/s); %d requests: statuses %v, transport errors %d; %d attempts retried (at most %d tries; %d of them published by a failed try), %d given up",
		r.Attempts, r.Acknowledged, r.Took.Round(time.Millisecond), float64(r.Attempts)/r.Took.Seconds(),
		r.Requests, r.Statuses, r.TransportErrors, r.Retried, r.MaxTries, r.FromEarlierTry, r.GaveUp)
}

// wait waits for every attempt to be settled (a 202, a refusal, or given
// up), fails t on what clients were wrongly told, and sums the load up.
func (f *faultLoad) wait(t *testing.T, timeout time.Duration) faultLoadResult {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(timeout):
		close(f.stop)
		<-f.done
		t.Fatalf("the load did not finish within %s", timeout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := faultLoadResult{Start: f.start, Attempts: f.cfg.Attempts, Requests: len(f.reqs), Statuses: map[int]int{}, GaveUp: f.gaveUp}
	acked := map[int]bool{}
	for _, r := range f.reqs {
		res.Took = max(res.Took, r.end.Sub(f.start))
		if r.status == 0 {
			res.TransportErrors++
		} else {
			res.Statuses[r.status]++
		}
		if r.status == http.StatusAccepted {
			acked[r.attempt] = true
			if r.try > 1 && r.submitted.Before(r.start) {
				res.FromEarlierTry++
			}
		}
		if r.try == 2 {
			res.Retried++
		}
		res.MaxTries = max(res.MaxTries, r.try)
	}
	res.Acknowledged = len(acked)
	for i, p := range f.problems {
		if i == 10 {
			t.Errorf("... and %d more", len(f.problems)-10)
			break
		}
		t.Error(p)
	}
	if res.Acknowledged != f.cfg.Attempts {
		t.Errorf("%d of %d attempts never got a 202", f.cfg.Attempts-res.Acknowledged, f.cfg.Attempts)
	}
	return res
}

func (f *faultLoad) requests() []faultRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// latencies returns, sorted, how long the 202s of requests started in
// [from, to) took.
func (f *faultLoad) latencies(from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, r := range f.requests() {
		if r.status == http.StatusAccepted && !r.start.Before(from) && r.start.Before(to) {
			out = append(out, r.end.Sub(r.start))
		}
	}
	slices.Sort(out)
	return out
}

// longestGap returns the longest time between two consecutive 202s
// received during the load, and when it began.
func (f *faultLoad) longestGap() (time.Duration, time.Time) {
	var ends []time.Time
	for _, r := range f.requests() {
		if r.status == http.StatusAccepted {
			ends = append(ends, r.end)
		}
	}
	slices.SortFunc(ends, time.Time.Compare)
	var gap time.Duration
	var at time.Time
	for i := 1; i < len(ends); i++ {
		if d := ends[i].Sub(ends[i-1]); d > gap {
			gap, at = d, ends[i-1]
		}
	}
	return gap, at
}

// servedAgain returns how long after at every student that sent a request
// after at had a 202 for one of them.
func (f *faultLoad) servedAgain(at time.Time) time.Duration {
	first := map[int]time.Time{}
	for _, r := range f.requests() {
		if r.status == http.StatusAccepted && !r.start.Before(at) {
			if e, ok := first[r.student]; !ok || r.end.Before(e) {
				first[r.student] = r.end
			}
		}
	}
	var worst time.Duration
	for _, e := range first {
		worst = max(worst, e.Sub(at))
	}
	return worst
}

func faultPercentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))].Round(100 * time.Microsecond)
}

func faultReportTally(t *testing.T, f faultTally) {
	t.Helper()
	t.Logf("result: %s", f)
}

// faultStreamState is the stream's last sequence and the consumer's ack
// floor and unacknowledged count at one moment.
type faultStreamState struct {
	at      time.Time
	floor   uint64
	last    uint64
	pending int
}

// faultState reads the stream's state, or returns why it could not (NATS
// may be down or electing a leader: callers decide what that means).
func faultState(ctx context.Context, s *stack) (faultStreamState, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st := faultStreamState{at: time.Now()}
	stream, err := s.JS.Stream(ctx, s.Stream.Name)
	if err != nil {
		return st, err
	}
	ci, err := faultConsumerInfo(ctx, s)
	if err != nil {
		return st, err
	}
	st.last = stream.CachedInfo().State.LastSeq
	st.floor, st.pending = ci.AckFloor.Stream, ci.NumAckPending
	return st, nil
}

func faultConsumerInfo(ctx context.Context, s *stack) (*jetstream.ConsumerInfo, error) {
	c, err := s.JS.Consumer(ctx, s.Stream.Name, s.Stream.Consumer)
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}

func faultStreamInfo(t *testing.T, s *stack) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	waitFor(t, 10*time.Second, "the stream's info", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		st, err := s.JS.Stream(ctx, s.Stream.Name)
		if err == nil {
			info = st.CachedInfo()
		}
		return err == nil
	})
	return info
}

// faultRedeliveries returns how many deliveries the consumer made and how
// many of them were redeliveries: each delivery takes a consumer sequence,
// and every message of the stream was delivered at least once.
func faultRedeliveries(t *testing.T, s *stack) (deliveries, redeliveries uint64) {
	t.Helper()
	var ci *jetstream.ConsumerInfo
	waitFor(t, 10*time.Second, "the consumer's info", func() bool {
		var err error
		ci, err = faultConsumerInfo(t.Context(), s)
		return err == nil
	})
	return ci.Delivered.Consumer, ci.Delivered.Consumer - ci.Delivered.Stream
}

// faultWatch samples the stream's state every 100ms until t ends.
type faultWatch struct {
	mu      sync.Mutex
	samples []faultStreamState
}

func startFaultWatch(t *testing.T, s *stack) *faultWatch {
	t.Helper()
	w := &faultWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := faultState(ctx, s); err == nil {
				w.mu.Lock()
				w.samples = append(w.samples, st)
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// settledAt returns when, after `after`, the ack floor first reached seq:
// every event up to seq stored (or set aside).
func (w *faultWatch) settledAt(seq uint64, after time.Time) (time.Time, bool) {
	for _, smp := range w.between(after, time.Now().Add(time.Hour)) {
		if smp.floor >= seq {
			return smp.at, true
		}
	}
	return time.Time{}, false
}

// sync waits until the watch has sampled the stream after this call.
func (w *faultWatch) sync(t *testing.T) {
	t.Helper()
	now := time.Now()
	waitFor(t, 10*time.Second, "a sample of the stream's state", func() bool {
		return len(w.between(now, now.Add(time.Hour))) > 0
	})
}

func (w *faultWatch) between(from, to time.Time) []faultStreamState {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []faultStreamState
	for _, smp := range w.samples {
		if smp.at.After(from) && smp.at.Before(to) {
			out = append(out, smp)
		}
	}
	return out
}

// newFaultStack is newStack on NATS servers the test runs itself (natsURL
// may list several, comma-separated): its own database, a connection that
// reconnects forever, and the stream and consumer, created as soon as
// JetStream can (a cluster first elects a meta leader).
func newFaultStack(t *testing.T, natsURL string, stream events.StreamConfig) *stack {
	t.Helper()
	st, dbURL := storetest.Open(t)
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Validate(); err != nil {
		t.Fatal(err)
	}
	var lg *events.Log
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for lg == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		lg, lastErr = events.NewLog(ctx, js, stream)
		cancel()
		if lg == nil && time.Now().After(deadline) {
			t.Fatalf("create the stream: %v", lastErr)
		}
		if lg == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
	s := &stack{DBURL: dbURL, Store: st, NATSURL: natsURL, NC: nc, JS: js, Stream: stream, Log: lg}
	for _, c := range store.DemoContent(store.DefaultDemo) {
		s.Quizzes = append(s.Quizzes, c.Quizzes...)
	}
	return s
}

// faultSpawnEnv is what every process of the stack needs beyond spawn's defaults.
func (s *stack) faultSpawnEnv() []string {
	return []string{"STREAM_REPLICAS=" + strconv.Itoa(s.Stream.Replicas)}
}

// faultSpawnWorker starts `quizstream worker` against the stack.
func (s *stack) faultSpawnWorker(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	return s.spawn(t, "worker", append(s.faultSpawnEnv(), env...)...)
}

// faultAPI starts `quizstream api` on a free address, waits until it is
// ready and returns its base URL.
func (s *stack) faultAPI(t *testing.T, env ...string) string {
	t.Helper()
	addr := freeAddr(t)
	s.faultSpawnAPI(t, addr, env...)
	return "http://" + addr
}

// faultSpawnAPI starts `quizstream api` on addr and waits until it is ready.
func (s *stack) faultSpawnAPI(t *testing.T, addr string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := s.spawn(t, "api", append(append(s.faultSpawnEnv(), "LISTEN_ADDR="+addr), env...)...)
	hc := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, 30*time.Second, "the api process on "+addr+" to be ready", func() bool {
		resp, err := hc.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd
}

// faultProxied puts a faultProxy between the stack and PostgreSQL and
// returns it with a copy of the stack whose DBURL goes through it (for
// the processes); s itself still reaches PostgreSQL directly, for checks.
func faultProxied(t *testing.T, s *stack) (*faultProxy, *stack) {
	t.Helper()
	u, err := url.Parse(s.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startFaultProxy(t, u.Host)
	u.Host = proxy.Addr()
	ps := *s
	ps.DBURL = u.String()
	return proxy, &ps
}

// faultBatchSeconds scrapes a worker process's operations listener and
// returns the sum and count of its batch durations.
func faultBatchSeconds(t *testing.T, ops string) (sum, count float64) {
	t.Helper()
	resp, err := httpClient.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatalf("scrape worker metrics: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape worker metrics: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), " ")
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "quizstream_worker_batch_duration_seconds_sum":
			sum = v
		case "quizstream_worker_batch_duration_seconds_count":
			count = v
		}
	}
	if count == 0 {
		t.Fatalf("worker metrics have no quizstream_worker_batch_duration_seconds")
	}
	return sum, count
}

// faultDatabaseRTT returns how long a query takes through dbURL.
func faultDatabaseRTT(t *testing.T, dbURL string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	if _, err := conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// faultPort returns a loopback port nothing listens on right now.
func faultPort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
