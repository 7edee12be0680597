// Command deploycheck runs the process set deploy/compose.yaml describes on
// this machine, without a container engine: the three NATS servers of the
// cluster (the nats-server of the version go.mod pins, each with
// deploy/nats/nats.conf and its own environment), migrate and stream apply
// to completion, the demo seed, 2 api and 2 worker processes of the
// quizstream binary, each with its service's environment. Only addresses
// and paths are changed: every service's host:port becomes a loopback
// port of its own, named volumes become folders, and the database is a
// fresh one on the local PostgreSQL (dropped at the end). It then checks
// that the streams are R3 on three current servers, runs a short load
// against both APIs (bench/load, the verification included) during which
// it SIGKILLs the NATS server leading the attempts stream and starts it
// again (-kill-leader), stops the api and worker processes with SIGTERM
// within their stop_grace_period, and reports. `make deploy-check`; -h lists the flags.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/deploy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		os.Exit(1)
	}
}

type options struct {
	users    int
	duration time.Duration
	think    time.Duration
	timeout  time.Duration
	adminURL string
	keep     bool
	kill     bool
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("deploycheck", flag.ContinueOnError)
	fs.IntVar(&o.users, "users", 100, "virtual students per API process")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured load")
	fs.DurationVar(&o.think, "think", 200*time.Millisecond, "a student's pause after each task (under the default ATTEMPT_RATE)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "the whole check at most")
	fs.StringVar(&o.adminURL, "admin-url", envOr("QUIZSTREAM_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"a PostgreSQL server URL whose role may create databases ($QUIZSTREAM_TEST_DATABASE_URL)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder (logs, NATS stores)")
	fs.BoolVar(&o.kill, "kill-leader", true, "SIGKILL the attempts stream's leader a quarter into the measured load and start it again 5 s later (the fault suite's cluster case)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := deploy.Root(wd)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "quizstream-deploycheck-")
	if err != nil {
		return err
	}
	c := &check{root: root, dir: filepath.Join(root, "deploy"), tmp: tmp, out: stdout, opts: o, addrs: map[string]string{}}
	defer func() {
		if !o.keep {
			os.RemoveAll(tmp)
		}
	}()
	start := time.Now()
	err = c.run(ctx)
	c.stopAll()
	if derr := c.dropDatabase(); derr != nil && err == nil {
		err = derr
	}
	c.say("took %s", time.Since(start).Round(time.Second))
	if err != nil {
		if o.keep {
			c.say("logs kept in %s", filepath.Join(tmp, "logs"))
		}
		return err
	}
	c.say("OK")
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type check struct {
	root, dir, tmp string
	out            io.Writer
	opts           options
	compose        *deploy.Compose
	env            map[string]string // .env.example, secrets made up
	bins           map[string]string
	addrs          map[string]string // "service:port" in compose -> loopback address here
	dbName, dbURL  string
	keys           int // keys the load was answered 202 for, every API
	procs          []*proc
	mu             sync.Mutex
}

func (c *check) say(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "deploycheck: "+format+"\n", args...)
}

func (c *check) run(ctx context.Context) error {
	if err := c.load(); err != nil {
		return err
	}
	if err := c.build(ctx); err != nil {
		return err
	}
	if err := c.createDatabase(ctx); err != nil {
		return err
	}
	names := c.order()
	var notRun []string
	for _, name := range sortedKeys(c.compose.Services) {
		if s := c.compose.Services[name]; !s.Quizstream() && !isNATS(s) {
			notRun = append(notRun, name+" ("+s.Image+")")
		}
	}
	c.say("compose services run here, in order: %s", strings.Join(names, ", "))
	c.say("not run (need their images; their files are checked by go test ./deploy): %s; PostgreSQL is this machine's, database %s",
		strings.Join(notRun, ", "), c.dbName)
	for _, name := range names {
		if err := c.start(ctx, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := c.checkStreams(ctx); err != nil {
		return err
	}
	if err := c.loadTest(ctx); err != nil {
		return err
	}
	if err := c.scrapeAll(ctx, c.keys); err != nil {
		return err
	}
	return c.stopServing()
}

// load reads compose.yaml with .env.example's variables, its empty
// secrets made up.
func (c *check) load() error {
	env, err := deploy.EnvFile(filepath.Join(c.dir, ".env.example"))
	if err != nil {
		return err
	}
	for k, v := range env {
		if v == "" {
			env[k] = randomHex(12)
		}
	}
	c.env = env
	c.compose, err = deploy.LoadCompose(filepath.Join(c.dir, "compose.yaml"), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		return err
	}
	// A loopback address for every port a service listens on.
	for _, name := range sortedKeys(c.compose.Services) {
		s := c.compose.Services[name]
		var ports []string
		switch {
		case isNATS(s):
			opts, err := c.natsOptions(name)
			if err != nil {
				return err
			}
			ports = []string{fmt.Sprint(opts.Port), fmt.Sprint(opts.Cluster.Port), fmt.Sprint(opts.HTTPPort)}
		case s.Quizstream():
			for _, k := range []string{"LISTEN_ADDR", "METRICS_ADDR"} {
				if _, p, err := net.SplitHostPort(s.Environment[k]); err == nil {
					ports = append(ports, p)
				}
			}
		}
		for _, p := range ports {
			a, err := freeAddr()
			if err != nil {
				return err
			}
			c.addrs[name+":"+p] = a
		}
	}
	return nil
}

func isNATS(s deploy.Service) bool { return strings.HasPrefix(s.Image, "nats:") }

// natsOptions reads the service's nats.conf as its server would.
func (c *check) natsOptions(name string) (*server.Options, error) {
	s := c.compose.Services[name]
	conf, err := c.hostFile(s, configArg(s.Command))
	if err != nil {
		return nil, err
	}
	for k, v := range s.Environment {
		os.Setenv(k, v)
	}
	return server.ProcessConfigFile(conf)
}

func configArg(args []string) string {
	for i, a := range args {
		if (a == "--config" || a == "-c") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// hostFile is the file of this repository bind-mounted at path in s.
func (c *check) hostFile(s deploy.Service, path string) (string, error) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == path && strings.HasPrefix(parts[0], ".") {
			return filepath.Join(c.dir, parts[0]), nil
		}
	}
	return "", fmt.Errorf("nothing of deploy/ is mounted at %s", path)
}

var hostPort = regexp.MustCompile(`\b([a-z0-9][a-z0-9.-]*):(\d{2,5})\b`)

// rewrite gives the addresses in s, as service name sees them, their
// loopback address here: another service's host:port, or its own
// 0.0.0.0/127.0.0.1/localhost:port.
func (c *check) rewrite(service, s string) string {
	return hostPort.ReplaceAllStringFunc(s, func(hp string) string {
		m := hostPort.FindStringSubmatch(hp)
		host := m[1]
		if host == "0.0.0.0" || host == "127.0.0.1" || host == "localhost" {
			host = service
		}
		if a, ok := c.addrs[host+":"+m[2]]; ok {
			return a
		}
		return hp
	})
}

// build compiles the quizstream binary and the nats-server go.mod pins.
func (c *check) build(ctx context.Context) error {
	c.bins = map[string]string{}
	for name, pkg := range map[string]string{"quizstream": "./cmd/quizstream", "nats-server": "github.com/nats-io/nats-server/v2"} {
		path := filepath.Join(c.tmp, "bin", name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, pkg)
		cmd.Dir = c.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		c.bins[name] = path
	}
	c.say("built quizstream and nats-server (go.mod's pin)")
	return nil
}

func (c *check) createDatabase(ctx context.Context) error {
	admin, err := url.Parse(c.opts.adminURL)
	if err != nil {
		return err
	}
	c.dbName = "quizstream_deploycheck_" + randomHex(4)
	conn, err := pgx.Connect(ctx, c.opts.adminURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+c.dbName); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	db := *admin
	db.Path = "/" + c.dbName
	c.dbURL = db.String()
	return nil
}

func (c *check) dropDatabase() error {
	if c.dbName == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.opts.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+c.dbName+" WITH (FORCE)")
	return err
}

// order is the services run here, each after what it depends on: the
// NATS servers, the one-shots, the demo seed, then api and worker.
func (c *check) order() []string {
	var out []string
	done := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if done[name] {
			return
		}
		done[name] = true
		s := c.compose.Services[name]
		for _, dep := range sortedKeys(s.DependsOn) {
			visit(dep)
		}
		if s.Quizstream() || isNATS(s) {
			out = append(out, name)
		}
	}
	names := sortedKeys(c.compose.Services)
	// The seed (profile demo) before the APIs, so that the load has quizzes.
	sort.SliceStable(names, func(i, j int) bool { return rank(c.compose.Services[names[i]]) < rank(c.compose.Services[names[j]]) })
	for _, n := range names {
		s := c.compose.Services[n]
		if len(s.Profiles) > 0 && !slicesContains(s.Profiles, "demo") {
			continue
		}
		visit(n)
	}
	return out
}

func rank(s deploy.Service) int {
	switch {
	case isNATS(s):
		return 0
	case s.Quizstream() && (s.Restart == "on-failure" || s.Restart == "no"):
		return 1
	}
	return 2
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// proc is a running process of a service.
type proc struct {
	name  string
	svc   deploy.Service
	bin   string
	args  []string
	env   map[string]string
	cmd   *exec.Cmd
	log   string
	done  chan struct{}
	err   error
	ended time.Time
}

func (c *check) spawn(name string, bin string, args []string, env map[string]string) (*proc, error) {
	logDir := filepath.Join(c.tmp, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{name: name, svc: c.compose.Services[name], bin: bin, args: args, env: env, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.ended = time.Now()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// tail is the end of p's log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// start runs one service as compose would: a server until it is healthy
// (ready), a one-shot to its successful end.
func (c *check) start(ctx context.Context, name string) error {
	s := c.compose.Services[name]
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = c.rewrite(name, v)
	}
	if _, ok := env["DATABASE_URL"]; ok {
		env["DATABASE_URL"] = c.dbURL // this machine's server, a database of the check's own
	}
	if isNATS(s) {
		return c.startNATS(ctx, name, s, env)
	}
	if s.Restart == "on-failure" || s.Restart == "no" {
		tries := 1
		if s.Restart == "on-failure" {
			tries = 5
		}
		for i := 1; ; i++ {
			p, err := c.spawn(name, c.bins["quizstream"], s.Command, env)
			if err != nil {
				return err
			}
			select {
			case <-p.done:
			case <-ctx.Done():
				p.cmd.Process.Kill()
				return ctx.Err()
			}
			if p.err == nil {
				c.say("%s: quizstream %s completed", name, strings.Join(s.Command, " "))
				return nil
			}
			if i >= tries {
				return fmt.Errorf("quizstream %s: %v\n%s", strings.Join(s.Command, " "), p.err, p.tail())
			}
			c.say("%s: %v; restarting (restart: on-failure)", name, p.err)
			time.Sleep(time.Second)
		}
	}
	p, err := c.spawn(name, c.bins["quizstream"], s.Command, env)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	ready := "http://" + c.rewrite(name, s.Environment["METRICS_ADDR"]) + "/readyz"
	if err := waitOK(ctx, p, ready); err != nil {
		return err
	}
	c.say("%s: quizstream %s ready (%s)", name, strings.Join(s.Command, " "), ready)
	return nil
}

func (c *check) startNATS(ctx context.Context, name string, s deploy.Service, env map[string]string) error {
	conf, err := c.hostFile(s, configArg(s.Command))
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(conf)
	if err != nil {
		return err
	}
	text := c.rewrite(name, string(raw))
	// Named volumes become folders of the check's own.
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") {
			dir := filepath.Join(c.tmp, "volumes", parts[0])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			text = regexp.MustCompile(regexp.QuoteMeta(parts[1])+`(/|\s|$)`).ReplaceAllString(text, dir+"$1")
		}
	}
	confPath := filepath.Join(c.tmp, name+".conf")
	if err := os.WriteFile(confPath, []byte(text), 0o644); err != nil {
		return err
	}
	args := append([]string(nil), s.Command...)
	for i, a := range args {
		if a == configArg(s.Command) {
			args[i] = confPath
		}
	}
	p, err := c.spawn(name, c.bins["nats-server"], args, env)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	// compose's health check: every node is started before any is waited
	// for (none has a quorum alone), so wait only once all are spawned.
	if c.natsStarted() < c.natsServices() {
		return nil
	}
	for _, q := range c.procs {
		if !isNATS(q.svc) {
			continue
		}
		var u string
		for _, a := range q.svc.Healthcheck.Test {
			if strings.HasPrefix(a, "http://") {
				u = c.rewrite(q.name, a)
			}
		}
		if err := waitOK(ctx, q, u); err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		c.say("%s: nats-server healthy (%s)", q.name, u)
	}
	return nil
}

func (c *check) natsServices() int {
	n := 0
	for _, s := range c.compose.Services {
		if isNATS(s) {
			n++
		}
	}
	return n
}

func (c *check) natsStarted() int {
	n := 0
	for _, p := range c.procs {
		if isNATS(p.svc) {
			n++
		}
	}
	return n
}

func waitOK(ctx context.Context, p *proc, u string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited (%v) before %s answered 200\n%s", p.err, u, p.tail())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not answer 200 within 90s\n%s", u, p.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStreams connects as the api processes do and checks that the
// attempts stream is R3 with every replica current.
func (c *check) checkStreams(ctx context.Context) error {
	js, close, err := c.jetStream()
	if err != nil {
		return err
	}
	defer close()
	for _, name := range []string{"ATTEMPTS", "ATTEMPTS_DLQ", "EXAMS", "EXAM_TIMERS"} {
		info, err := streamInfo(ctx, js, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		current := 0
		if info.Cluster != nil {
			for _, r := range info.Cluster.Replicas {
				if r.Current && !r.Offline {
					current++
				}
			}
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || current != 2 {
			return fmt.Errorf("stream %s: replicas %d, %d current followers; want R3 on three current servers", name, info.Config.Replicas, current)
		}
		c.say("stream %s: R%d, leader %s, 2 followers current, storage %s", name, info.Config.Replicas, info.Cluster.Leader, info.Config.Storage)
	}
	return nil
}

// jetStream connects as the api processes do; close closes the connection.
func (c *check) jetStream() (_ jetstream.JetStream, close func(), _ error) {
	var api deploy.Service
	for _, s := range c.compose.Services {
		if deploy.Role(s.Command) == "api" {
			api = s
		}
	}
	nc, err := nats.Connect(c.rewrite("", api.Environment["NATS_URL"]),
		nats.UserInfo(api.Environment["NATS_USER"], api.Environment["NATS_PASSWORD"]),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// loadTest runs the load tool against every API process at once, each
// run verifying that its 202s are stored exactly once.
func (c *check) loadTest(ctx context.Context) (err error) {
	// The load's own bound, under the check's: signups, the run, the
	// verification, with room.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute+c.opts.duration+time.Minute)
	defer cancel()
	defer func() {
		if err != nil && c.opts.keep {
			// Where were they? Go prints every goroutine's stack on SIGQUIT.
			for _, p := range c.procs {
				if p.svc.Quizstream() {
					p.cmd.Process.Signal(syscall.SIGQUIT)
				}
			}
			c.say("api and worker goroutines dumped into their logs (SIGQUIT)")
		}
	}()
	var apis []string
	for _, p := range c.procs {
		if deploy.Role(p.svc.Command) == "api" {
			apis = append(apis, p.name)
		}
	}
	type outcome struct {
		name string
		res  load.Result
		err  error
	}
	results := make([]outcome, len(apis))
	measuring := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i, name := range apis {
		base := "http://" + c.rewrite(name, c.compose.Services[name].Environment["LISTEN_ADDR"])
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last time.Time
			res, err := load.Run(ctx, load.Config{URL: base, Users: c.opts.users, ThinkTime: c.opts.think,
				WarmUp: 3 * time.Second, Duration: c.opts.duration, VerifyTimeout: time.Minute,
				OnPhase: func(phase string) {
					if phase == "measure" {
						once.Do(func() { close(measuring) })
					}
				},
				Progress: func(p load.Progress) {
					if time.Since(last) >= 5*time.Second {
						last = time.Now()
						c.say("%s %s", name, p)
					}
				}})
			results[i] = outcome{name, res, err}
		}()
	}
	c.say("load: %d students on each of %s for %s (think %s), then every 202 read back", c.opts.users, strings.Join(apis, ", "), c.opts.duration, c.opts.think)
	var killErr error
	if c.opts.kill {
		select {
		case <-measuring:
			killErr = c.killLeader(ctx, c.opts.duration/4)
		case <-ctx.Done():
		}
	}
	if killErr != nil {
		return killErr // the deferred cancel ends the load
	}
	wg.Wait()
	var errs []error
	for _, o := range results {
		if o.err != nil {
			errs = append(errs, fmt.Errorf("load on %s: %w", o.name, o.err))
			continue
		}
		t := o.res.Total
		v := o.res.Verify
		c.say("load on %s: %d requests, %.0f/s, p50 %.1f ms, p99 %.1f ms, errors %d, 503 %d, 429 %d; %d keys answered 202, %d read back recorded once, check ok: %v",
			o.name, t.Requests, t.RPS, t.Latency.P50, t.Latency.P99, t.Errors, t.Unavailable, t.RateLimited,
			v.Keys, v.Recorded, v.OK)
		c.keys += v.Keys
		if !v.OK || t.Errors > 0 {
			errs = append(errs, fmt.Errorf("load on %s: errors %d, verification %+v", o.name, t.Errors, *v))
		}
	}
	return errors.Join(errs...)
}

// streamInfo asks for the named stream's info, for at most 2 s: a request
// made while the connection reconnects can go unanswered.
func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

// killLeader waits, then SIGKILLs the NATS server leading the attempts
// stream (a crash: no clean shutdown), starts it again 5 s later on the
// same store, and waits until it is a current replica again.
func (c *check) killLeader(ctx context.Context, after time.Duration) error {
	select {
	case <-time.After(after):
	case <-ctx.Done():
		return ctx.Err()
	}
	js, close, err := c.jetStream()
	if err != nil {
		return err
	}
	defer close()
	info, err := streamInfo(ctx, js, "ATTEMPTS")
	if err != nil || info.Cluster == nil {
		return fmt.Errorf("stream ATTEMPTS: %v", err)
	}
	leader := info.Cluster.Leader
	var victim *proc
	var at int
	for i, p := range c.procs {
		if p.name == leader {
			victim, at = p, i
		}
	}
	if victim == nil {
		return fmt.Errorf("the leader %q is none of the nats services", leader)
	}
	victim.cmd.Process.Kill()
	<-victim.done
	killed := time.Now()
	c.say("%s: SIGKILLed under load (it led ATTEMPTS); starting it again in 5 s", leader)
	time.Sleep(5 * time.Second)
	p, err := c.spawn(victim.name, victim.bin, victim.args, victim.env)
	if err != nil {
		return err
	}
	c.procs[at] = p
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := streamInfo(ctx, js, "ATTEMPTS")
		if err == nil && info.Cluster != nil {
			for _, r := range info.Cluster.Replicas {
				if r.Name == leader && r.Current && !r.Offline {
					c.say("%s: back, a current replica of ATTEMPTS %s after the kill (leader now %s)", leader, time.Since(killed).Round(100*time.Millisecond), info.Cluster.Leader)
					return nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var cluster any = err
			if err == nil {
				cluster = info.Cluster
			}
			b, _ := json.Marshal(cluster)
			return fmt.Errorf("%s: not a current replica again within 60 s of its restart: ATTEMPTS cluster %s (%v)\n%s", leader, b, err, p.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrapeAll reads /metrics where Prometheus would (each api and worker's
// METRICS_ADDR): every process must read the stream, and the workers
// together must have stored exactly the keys the load was answered 202
// for (re-sends are duplicates, not stored).
func (c *check) scrapeAll(ctx context.Context, keys int) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	var stored float64
	var parts []string
	for _, p := range c.procs {
		if !p.svc.Quizstream() {
			continue
		}
		u := "http://" + c.rewrite(p.name, p.svc.Environment["METRICS_ADDR"]) + "/metrics"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		m := samples(string(body))
		for _, family := range []string{"attempts", "exams"} {
			if up := m[`quizstream_stream_up{family="`+family+`"}`]; up != 1 {
				return fmt.Errorf("%s: quizstream_stream_up of %s is %v at %s", p.name, family, up, u)
			}
		}
		if deploy.Role(p.svc.Command) == "worker" {
			n := m[`quizstream_worker_messages_total{family="attempts",result="stored"}`]
			stored += n
			parts = append(parts, fmt.Sprintf("%s %.0f", p.name, n))
		}
	}
	if int(stored) != keys {
		return fmt.Errorf("the workers' metrics count %.0f attempts stored, the load was answered 202 for %d keys", stored, keys)
	}
	c.say("metrics: every api and worker serves /metrics on its METRICS_ADDR with the stream up; attempts stored: %s", strings.Join(parts, ", "))
	return nil
}

// samples reads Prometheus's text format: series (name and labels as
// written) to value.
func samples(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// stopServing sends SIGTERM to the api and worker processes, as compose
// stop does, and checks each exits 0 within its stop_grace_period.
func (c *check) stopServing() error {
	var errs []error
	for _, p := range c.procs {
		if !p.svc.Quizstream() {
			continue
		}
		grace, err := time.ParseDuration(p.svc.StopGracePeriod)
		if err != nil {
			grace = 10 * time.Second // compose's default
		}
		start := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			took := p.ended.Sub(start).Round(10 * time.Millisecond)
			if p.err != nil {
				errs = append(errs, fmt.Errorf("%s: exited %v after SIGTERM\n%s", p.name, p.err, p.tail()))
			} else {
				c.say("%s: stopped cleanly %s after SIGTERM (stop_grace_period %s)", p.name, took, grace)
			}
		case <-time.After(grace):
			errs = append(errs, fmt.Errorf("%s: still running %s after SIGTERM (stop_grace_period)", p.name, grace))
		}
	}
	return errors.Join(errs...)
}

// stopAll kills what is still running.
func (c *check) stopAll() {
	for _, p := range c.procs {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
