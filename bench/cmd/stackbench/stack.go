package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// proc is one server process of the stack.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs bin with args and env (added to this process's), its output
// in dir/<name>.log.
func start(dir, name, bin string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to 20s, then kills; it returns the exit
// error of a process that did not stop cleanly.
func (p *proc) stop() error {
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 20s of SIGTERM; killed", p.name)
	}
}

// tail returns the last lines of the process's log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// waitReady polls url until it answers 200, the process exits or a minute
// passes.
func waitReady(ctx context.Context, p *proc, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited before %s answered: %v\n%s", p.name, url, p.err, p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %s did not answer 200 within a minute\n%s", p.name, url, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address whose port was free just now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// build compiles the binaries the stack runs, from the module at root.
func build(ctx context.Context, root, dir string) (map[string]string, error) {
	bins := map[string]string{
		"quizstream":  "./cmd/quizstream",
		"nats-server": "github.com/nats-io/nats-server/v2", // the version go.mod pins
		"baseline":    "./bench/cmd/baseline",
		"floor":       "./bench/cmd/floor",
	}
	out := map[string]string{}
	for name, pkg := range bins {
		path := filepath.Join(dir, name)
		goBuild := func(flags ...string) error {
			cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, flags...), "-o", path, pkg)...)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
			}
			return nil
		}
		// The quizstream binary carries its commit when the tree has one
		// (GOFLAGS may turn stamping off; a tree without history cannot).
		if name != "quizstream" || goBuild("-buildvcs=true") != nil {
			if err := goBuild(); err != nil {
				return nil, err
			}
		}
		out[name] = path
	}
	return out, nil
}

// commitOf returns the VCS revision a binary was built from, with
// "+modified" when the work tree had uncommitted changes, or "unknown".
func commitOf(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown"
	}
	rev, modified := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		rev += "+modified"
	}
	return rev
}

// natsServer is the JetStream server of the stack.
type natsServer struct {
	*proc
	url, monitor string
}

// startNATS runs the built server on free loopback ports with JetStream,
// a store under dir and every write fsynced before its ack.
func startNATS(ctx context.Context, bin, dir string) (*natsServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	mon, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("listen: %q\nhttp: %q\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n",
		addr, mon, filepath.Join(dir, "jetstream"))
	confPath := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start(dir, "nats-server", bin, nil, "-c", confPath)
	if err != nil {
		return nil, err
	}
	n := &natsServer{proc: p, url: "nats://" + addr, monitor: "http://" + mon}
	if err := waitReady(ctx, p, n.monitor+"/healthz?js-enabled-only=true"); err != nil {
		p.stop()
		return nil, err
	}
	return n, nil
}

// varz is what the results record of the server's own report.
type varz struct {
	Version   string `json:"version"`
	JetStream struct {
		Config struct {
			SyncAlways bool   `json:"sync_always"`
			StoreDir   string `json:"store_dir"`
		} `json:"config"`
	} `json:"jetstream"`
}

func (n *natsServer) varz() (varz, error) {
	var v varz
	resp, err := http.Get(n.monitor + "/varz")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal(b, &v)
}

// postgres creates and drops the benchmark's databases.
type postgres struct {
	admin string // URL of a database to connect to for CREATE/DROP
}

func (pg postgres) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, pg.admin)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// create makes an empty database and returns its URL.
func (pg postgres) create(ctx context.Context, name string) (string, error) {
	if err := pg.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(pg.admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func (pg postgres) drop(ctx context.Context, name string) error {
	return pg.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// settings returns the server's version and the settings that decide
// what a commit costs.
func (pg postgres) settings(ctx context.Context) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, pg.admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	out := map[string]string{}
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers", "max_connections"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// runTool runs a quizstream subcommand to completion.
func runTool(ctx context.Context, bin string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, b)
	}
	return nil
}

// scrape returns the samples of the named metrics, each summed over its
// labels (the event families), from a
// Prometheus text endpoint; a metric it does not find is absent.
func scrape(url string, names ...string) map[string]float64 {
	out := map[string]float64{}
	for series, v := range scrapeSeries(url, names...) {
		name, _, _ := strings.Cut(series, "{")
		out[name] += v
	}
	return out
}

// scrapeSeries returns every series of the named metrics, keyed by the
// series as the endpoint wrote it (name{labels}); a metric it does not
// find is absent.
func scrapeSeries(url string, names ...string) map[string]float64 {
	out := map[string]float64{}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return out
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if name, _, _ := strings.Cut(f[0], "{"); !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] += v
		}
	}
	return out
}

// hasCommand reports whether the quizstream binary has a subcommand.
func hasCommand(ctx context.Context, bin, command string) bool {
	out, _ := exec.CommandContext(ctx, bin, "help").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == command {
			return true
		}
	}
	return false
}

// moduleRoot returns the directory of the go.mod of the module being run.
func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the quizstream module: run from its root")
	}
	return filepath.Dir(mod), nil
}
