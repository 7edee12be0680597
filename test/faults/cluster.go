package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/natsserver"
)

// NodeTest is the test a Node run as a process re-executes its test binary
// with: the test package that starts such nodes must have it, calling
// ServeNode.
const NodeTest = "TestHelperNATSNode"

// nodeEnv carries a node process's natsserver.ServerConfig, as JSON.
const nodeEnv = "QUIZSTREAM_FAULT_NATS_NODE"

// Node is one server of a test cluster: in this process (stopped by
// Shutdown, a clean stop) or a process of its own (stopped by SIGKILL, a
// crash).
type Node struct {
	Config  natsserver.ServerConfig
	Process bool

	mu  sync.Mutex
	ns  *server.Server
	cmd *exec.Cmd
}

// StartCluster starts n servers forming one JetStream cluster on loopback
// ports, each with a store directory of its own, as processes when
// processes is true; they stop when t ends. It fails t when one does not
// start.
func StartCluster(t testing.TB, n int, processes bool) []*Node {
	t.Helper()
	nodes := make([]*Node, n)
	var routes []string
	for i := range nodes {
		nodes[i] = &Node{Process: processes, Config: natsserver.ServerConfig{Dir: t.TempDir(), Port: Port(t),
			Name: fmt.Sprintf("quizstream-n%d", i+1), Cluster: &natsserver.ClusterConfig{Name: "quizstream-faults", Port: Port(t)}}}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nodes[i].Config.Cluster.Port))
	}
	for _, nd := range nodes {
		nd.Config.Cluster.Routes = routes
		t.Cleanup(func() { nd.Stop(t) })
	}
	var wg sync.WaitGroup
	for _, nd := range nodes { // together: none has a quorum alone
		wg.Go(func() { nd.Start(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// URL returns the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Config.Port) }

// Start starts the node and waits until it accepts connections; it may
// run in a goroutine of its own (it fails t with Error, not Fatal).
func (n *Node) Start(t testing.TB) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.Process {
		ns, err := natsserver.StartServer(n.Config)
		if err != nil {
			t.Errorf("start %s: %v", n.Config.Name, err)
			return
		}
		n.ns = ns
		return
	}
	cfg, err := json.Marshal(n.Config)
	if err != nil {
		t.Error(err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+NodeTest+"$", "-test.timeout=20m")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(cfg))
	cmd.Stderr = apptest.Writer{T: t}
	// The node stops when this pipe closes: when the test process ends,
	// however it ends, no server is left behind.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Error(err)
		return
	}
	if err := cmd.Start(); err != nil {
		t.Errorf("start %s: %v", n.Config.Name, err)
		return
	}
	n.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.Config.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s does not accept connections after 30s: %v", n.Config.Name, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the in-process server down, or SIGKILLs the node's process;
// it does nothing to a stopped node, and fails t when the kill fails.
func (n *Node) Stop(t testing.TB) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
		n.ns = nil
	}
	if n.cmd != nil {
		if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Errorf("kill %s: %v", n.Config.Name, err)
		}
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// Clients says how many of the quizstream processes' connections
// (connection name "quizstream") the node holds, or "an unknown number"
// when it cannot tell (a node in a process of its own).
func (n *Node) Clients() string {
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

// ServeNode is the body of NodeTest: in a process started by a Node it
// runs the NATS server its environment describes until its stdin closes;
// anywhere else it skips t.
func ServeNode(t testing.TB) {
	raw := os.Getenv(nodeEnv)
	if raw == "" {
		t.Skip("a NATS server process run by the fault suite")
	}
	var cfg natsserver.ServerConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	ns, err := natsserver.StartServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// ReplicaCurrent reports whether the stream leader sees the named server
// as an online, current replica (and with no lag, when exact); false also
// when it cannot tell within a second.
func ReplicaCurrent(t testing.TB, s *apptest.Stack, name string, exact bool) bool {
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

// Port returns a loopback port nothing listens on right now, or fails t.
func Port(t testing.TB) int {
	t.Helper()
	_, port, err := net.SplitHostPort(apptest.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
