//go:build faults

package suite

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
)

// TestFaultClusterNodeLost runs a 3-node JetStream cluster with an R3
// stream, loses the stream leader under load and brings it back 8s later
// (same name, ports and store directory). "shutdown" stops an in-process
// server (a clean stop: it hands its leaderships over first); "sigkill"
// runs each node as a process of its own and SIGKILLs it (a crash: the
// others must elect a leader). Clients retry the 503s of the election
// with the same key; nothing acknowledged is lost, and the returning node
// catches up.
func TestFaultClusterNodeLost(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) { clusterNodeLost(t, false) })
	t.Run("sigkill", func(t *testing.T) { clusterNodeLost(t, true) })
}

func clusterNodeLost(t *testing.T, crash bool) {
	nodes := faults.StartCluster(t, 3, crash)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.URL())
	}
	s := apptest.NewOn(t, strings.Join(urls, ","), streams.StreamConfig{Replicas: 3, AckWait: 3 * time.Second})
	_, a := s.SpawnAPI(t, "")
	s.Spawn(t, "worker", "WORKERS=2")
	students := faults.Students(t, a, "cluster", 32)
	l := faults.NewLedger()
	load := faults.StartLoad(t, s, l, faults.LoadConfig{URLs: []string{a}, Students: students, Attempts: 6000, Rate: 250, Prefix: "cluster"})

	load.SleepUntil(6 * time.Second)
	info := faults.StreamInfo(t, s)
	victim := slices.IndexFunc(nodes, func(n *faults.Node) bool { return n.Config.Name == info.Cluster.Leader })
	if victim < 0 {
		t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	}
	name := nodes[victim].Config.Name
	consumerLeader := "?"
	if ci, err := faults.ConsumerInfo(t.Context(), s); err == nil && ci.Cluster != nil {
		consumerLeader = ci.Cluster.Leader
	}
	clients := nodes[victim].Clients()
	lostAt := time.Now()
	nodes[victim].Stop(t)
	var elected time.Time
	apptest.WaitFor(t, 30*time.Second, "a new stream leader", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		st, err := s.JS.Stream(ctx, s.Stream.Name)
		if err != nil {
			return false
		}
		if c := st.CachedInfo().Cluster; c != nil && c.Leader != "" && c.Leader != name {
			elected = time.Now()
			return true
		}
		return false
	})
	load.SleepUntil(14 * time.Second)
	backAt := time.Now()
	nodes[victim].Start(t)
	var caughtUp time.Time
	apptest.WaitFor(t, 60*time.Second, name+" to be a current replica again", func() bool {
		ok := faults.ReplicaCurrent(t, s, name, false)
		if ok {
			caughtUp = time.Now()
		}
		return ok
	})
	res := load.Wait(t, 2*time.Minute)
	s.WaitDrained(t, 60*time.Second)
	apptest.WaitFor(t, 30*time.Second, name+" to hold everything", func() bool {
		return faults.ReplicaCurrent(t, s, name, true)
	})

	tally := faults.Check(t, s, l)
	t.Logf("result: %s", tally)
	t.Logf("load: %s", res)
	gap, gapAt := load.LongestGap()
	deliveries, redelivered := faults.Redeliveries(t, s)
	how := "shut down"
	if crash {
		how = "SIGKILLed"
	}
	t.Logf("node lost: %s (stream leader; consumer leader %s; %s of the API's and worker's connections) %s at %s; new stream leader seen %s later; every student had a 202 again %s after the loss; longest time without any 202 %s (at %s)",
		name, consumerLeader, clients, how, lostAt.Sub(res.Start).Round(time.Millisecond), elected.Sub(lostAt).Round(time.Millisecond),
		load.ServedAgain(lostAt).Round(time.Millisecond), gap.Round(time.Millisecond), gapAt.Sub(res.Start).Round(time.Millisecond))
	t.Logf("node back at %s: a current replica %s after its restart, and with no lag once the load ended; deliveries %d, redeliveries %d",
		backAt.Sub(res.Start).Round(time.Millisecond), caughtUp.Sub(backAt).Round(time.Millisecond), deliveries, redelivered)
}

// TestHelperNATSNode is not a test: a faults.Node run as a process
// re-executes this test binary with it, to be one NATS server that a test
// can SIGKILL; it serves until its stdin closes, and skips anywhere else.
func TestHelperNATSNode(t *testing.T) {
	faults.ServeNode(t)
}
