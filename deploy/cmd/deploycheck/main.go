// Command deploycheck runs the process set deploy/compose.yaml describes on
// this machine, without a container engine: the three NATS servers of the
// cluster (the nats-server of the version go.mod pins, each with
// deploy/nats/nats.conf and its own environment), migrate and stream apply
// to completion, the demo seed, 2 api and 2 worker processes and the
// checker (against a Judge0-compatible fake) of the quizstream binary,
// each with its service's environment. Only addresses
// and paths are changed: every service's host:port becomes a loopback
// port of its own, named volumes become folders, and the database is a
// fresh one on the local PostgreSQL (dropped at the end). It then checks
// that every stream is R3 on three current servers, runs a short load
// against both APIs (bench/load, the verification included) during which
// it SIGKILLs the NATS server leading the attempts stream and starts it
// again (-kill-leader), stops the api, worker and checker processes with SIGTERM
// within their stop_grace_period, and reports. `make deploy-check`; -h lists the flags.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
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

	"github.com/quizstream/quizstream/checker/judge0test"
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
	// The checker role talks to a Judge0 a site points CHECKER_URL at:
	// here the Judge0-compatible fake the tests use.
	judge0 := judge0test.New(judge0test.Config{})
	defer judge0.Close()
	c := &check{root: root, dir: filepath.Join(root, "deploy"), tmp: tmp, out: stdout, opts: o, addrs: map[string]string{},
		checkerURL: judge0.URL}
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
	checkerURL     string            // CHECKER_URL: a Judge0-compatible fake
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
	env["CHECKER_URL"] = c.checkerURL
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
