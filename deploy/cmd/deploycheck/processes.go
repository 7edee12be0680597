package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/quizstream/quizstream/deploy"
)

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

// stopServing sends SIGTERM to the api, worker and checker processes, as compose
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
