package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/deploy"
)

// wantStreams is every stream `stream apply` makes: the three event
// families' streams and their dead letters and timers, the read model's
// bucket and the content snapshot's object store.
var wantStreams = []string{"ATTEMPTS", "ATTEMPTS_DLQ", "CHECKS", "EXAMS", "EXAM_TIMERS", "KV_quizstream_students", "OBJ_quizstream_content"}

// checkStreams connects as the api processes do and checks that every
// stream on the cluster, each of wantStreams among them, is R3 with
// every replica current.
func (c *check) checkStreams(ctx context.Context) error {
	js, close, err := c.jetStream()
	if err != nil {
		return err
	}
	defer close()
	names, err := streamNames(ctx, js)
	if err != nil {
		return err
	}
	for _, name := range wantStreams {
		if !slices.Contains(names, name) {
			return fmt.Errorf("stream %s: missing after stream apply (the cluster has %v)", name, names)
		}
	}
	for _, name := range names {
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

// streamNames returns the names of the streams on the cluster, sorted,
// asking for at most 2 s.
func streamNames(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l := js.StreamNames(ctx)
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("stream names: %w", err)
	}
	slices.Sort(names)
	return names, nil
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
