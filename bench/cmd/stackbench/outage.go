package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// The checker-outage phase measures issue 17's fault: the code checker
// (Judge0) down for a while under the attempt load. One open-model run
// at a fixed arrival rate, well below saturation, of attempt POSTs and
// reads with code checks among them, is measured in three windows: A
// with the checker up, B with it down, C with it back. It reports each
// window's latencies and B's and C's ratios to A, the calls the checker
// received while down (its circuit breaker should keep them few), and
// how long after its return every check waiting for it was final. It
// states figures; it holds them against no bound.
const (
	// onlyOutage is the -only value that runs the phase alone.
	onlyOutage = "checker-outage"
	// outageFakePolls is how many polls see a submission of the fake
	// Judge0 unfinished (In Queue, then Processing) before its verdict,
	// as a real one is busy for a while.
	outageFakePolls = 1
	// breakerOpen is quizstream_checker_breaker_state's value when open.
	breakerOpen = 2
)

// Window names of the phase, in order.
var outageWindows = []string{"A: checker up", "B: checker down", "C: checker back"}

// outageOptions are the phase's settings.
type outageOptions struct {
	Skip  bool    `json:"skip"`
	Users int     `json:"users"`
	Rate  float64 `json:"rate"` // attempt POSTs and reads per second
	// Mix shares Rate among the tasks; CheckRate is checks per second on
	// top of it.
	Mix       load.Weights  `json:"mix"`
	CheckRate float64       `json:"check_rate"`
	WarmUp    time.Duration `json:"warm_up_ns"`
	Before    time.Duration `json:"before_ns"` // window A
	Down      time.Duration `json:"down_ns"`   // window B
	After     time.Duration `json:"after_ns"`  // window C
	// Settle bounds the wait, after the load, for every check to be final.
	Settle time.Duration `json:"settle_ns"`
}

// outageDefaultMix is the attempt load: POSTs and the student's own
// reads, the requests a checker outage must not slow.
var outageDefaultMix = load.Weights{Submit: 50, Progress: 25, Attempts: 25}

func outageFlags(fs *flag.FlagSet, o *outageOptions) {
	o.Mix = outageDefaultMix
	fs.BoolVar(&o.Skip, "skip-checker-outage", false, "do not run the checker-outage phase")
	fs.IntVar(&o.Users, "outage-users", 100, "students of the checker-outage phase")
	fs.Float64Var(&o.Rate, "outage-rate", 400, "the checker-outage phase's arrivals of the mix per second (a fixed rate, well below saturation)")
	fs.Func("outage-mix", "the checker-outage phase's mix, task=weight,... (default "+outageDefaultMix.String()+"; checks come from -outage-check-rate)", func(v string) error {
		w, err := load.ParseWeights(v)
		if err == nil && w.Check > 0 {
			err = errors.New("checks have their own rate: -outage-check-rate")
		}
		o.Mix = w
		return err
	})
	fs.Float64Var(&o.CheckRate, "outage-check-rate", 2, "code checks per second, on top of -outage-rate")
	fs.DurationVar(&o.WarmUp, "outage-warmup", 10*time.Second, "warm-up of the checker-outage phase, after every signup")
	fs.DurationVar(&o.Before, "outage-before", 30*time.Second, "window A: the checker up")
	fs.DurationVar(&o.Down, "outage-down", 30*time.Second, "window B: the checker down (its connections closed unanswered)")
	fs.DurationVar(&o.After, "outage-after", 30*time.Second, "window C: the checker back")
	fs.DurationVar(&o.Settle, "outage-settle", 5*time.Minute, "longest wait after the load for every check to be final")
}

// quick shortens the phase for a smoke run, but for the flags given.
func (o *outageOptions) quick(set map[string]bool) {
	for name, f := range map[string]func(){
		"outage-users": func() { o.Users = 20 }, "outage-rate": func() { o.Rate = 60 }, "outage-warmup": func() { o.WarmUp = 2 * time.Second },
		"outage-before": func() { o.Before = 5 * time.Second }, "outage-down": func() { o.Down = 5 * time.Second },
		"outage-after": func() { o.After = 5 * time.Second }, "outage-settle": func() { o.Settle = 2 * time.Minute },
	} {
		if !set[name] {
			f()
		}
	}
}

// outageWeights returns the run's weights and its total arrival rate: the
// mix's shares of rate, and checks at checkRate, in hundredths of a task
// per second (weights are whole numbers).
func outageWeights(mix load.Weights, rate, checkRate float64) (load.Weights, float64) {
	sum := float64(mix.Content + mix.User + mix.Progress + mix.Attempts + mix.Submit)
	scale := func(w int) int {
		if sum == 0 {
			return 0
		}
		return int(float64(w)/sum*rate*100 + 0.5)
	}
	w := load.Weights{Content: scale(mix.Content), User: scale(mix.User), Progress: scale(mix.Progress),
		Attempts: scale(mix.Attempts), Submit: scale(mix.Submit), Check: int(checkRate*100 + 0.5)}
	return w, rate + checkRate
}

// outageRun is what the phase samples while its load runs.
type outageRun struct {
	mu      sync.Mutex
	marks   []outageMark    // one as each window begins, and one at the end
	breaker []breakerSample // the checker's breaker, every 250ms
}

// outageMark is the state as a window began (or the last ended).
type outageMark struct {
	at    time.Time
	fake  judge0test.Stats
	cpu   sample
	calls map[string]float64 // quizstream_checker_calls_total by outcome
	load  string
}

type breakerSample struct {
	at    time.Time
	state float64
}

// outage runs the phase with a database named after prefix, on a NATS
// server of its own; it returns what it measured, with the error that
// stopped it, if any, in its Error.
func (b *bench) outage(ctx context.Context, prefix string) *outageResult {
	o := b.o.Outage
	res := &outageResult{Users: o.Users, Rate: o.Rate, CheckRate: o.CheckRate, Mix: o.Mix.String(), FakePolls: outageFakePolls}
	if err := b.runOutage(ctx, prefix, res); err != nil {
		res.Error = err.Error()
		b.say("checker outage: %v", err)
	}
	return res
}

func (b *bench) runOutage(ctx context.Context, prefix string, res *outageResult) error {
	o := b.o.Outage
	dir := filepath.Join(b.tmp, "outage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b.say("checker outage: starting a nats-server of its own (JetStream, sync_interval: always)")
	ns, err := startNATS(ctx, b.bins["nats-server"], dir)
	if err != nil {
		return err
	}
	defer ns.stop()
	if v, err := ns.varz(); err == nil && b.rep.Versions.NATSServer == "" {
		b.rep.Versions.NATSServer, b.rep.Versions.NATSSyncAlways = v.Version, v.JetStream.Config.SyncAlways
	}
	db := prefix + "_outage"
	dbURL, err := b.pg.create(ctx, db)
	if err != nil {
		return err
	}
	defer b.dropLater(ctx, db)
	b.say("checker outage: database %s: migrate, stream apply, seed", db)
	env := []string{"DATABASE_URL=" + dbURL, "LOG_LEVEL=warn", "NATS_URL=" + ns.url}
	for _, args := range [][]string{{"migrate"}, {"stream", "apply"}, {"seed"}} {
		if err := runTool(ctx, b.bins["quizstream"], env, args...); err != nil {
			return err
		}
	}
	programs, err := outagePrograms(ctx, dbURL)
	if err != nil {
		return err
	}

	// The fake Judge0 runs in this process, on loopback; the checker role
	// takes its defaults, as a site runs it.
	fake := judge0test.New(judge0test.Config{Polls: outageFakePolls, Seed: 17})
	defer fake.Close()
	d, err := b.startQuizstreamOn(ctx, ns, dir, db, dbURL)
	if d != nil {
		defer d.stop()
	}
	if err != nil {
		return err
	}
	checkerOps, err := freeAddr()
	if err != nil {
		return err
	}
	b.say("checker outage: starting quizstream checker (CHECKER_URL: the fake Judge0 at %s)", fake.URL)
	ck, err := start(dir, "checker", b.bins["quizstream"], append(env, "CHECKER_URL="+fake.URL, "METRICS_ADDR="+checkerOps), "checker")
	if err != nil {
		return err
	}
	d.procs = append(d.procs, ck)
	if err := waitReady(ctx, ck, "http://"+checkerOps+"/readyz"); err != nil {
		return err
	}
	d.tiers.pids[tierChecker] = ck.pid()
	metrics := "http://" + checkerOps + "/metrics"

	run := &outageRun{}
	stopBreaker := sync.OnceFunc(b.every(250*time.Millisecond, func() {
		st, ok := scrape(metrics, "quizstream_checker_breaker_state")["quizstream_checker_breaker_state"]
		if ok {
			run.mu.Lock()
			run.breaker = append(run.breaker, breakerSample{time.Now(), st})
			run.mu.Unlock()
		}
	}))
	defer stopBreaker()
	// Marks are taken off the load's goroutine: OnWindow must not block.
	marks := make(chan int, len(outageWindows)+1)
	var markWG sync.WaitGroup
	markWG.Add(1)
	go func() {
		defer markWG.Done()
		for i := range marks {
			m := outageMark{cpu: d.tiers.sample(), calls: scrapeSeries(metrics, "quizstream_checker_calls_total")}
			_, _, _, m.load = machineCPU()
			run.mu.Lock()
			run.marks[i].cpu, run.marks[i].calls, run.marks[i].load = m.cpu, m.calls, m.load
			run.mu.Unlock()
		}
	}()
	mark := func(i int) {
		if i >= len(outageWindows)+1 {
			return
		}
		run.mu.Lock()
		if len(run.marks) == i {
			run.marks = append(run.marks, outageMark{at: time.Now(), fake: fake.Stats()})
			marks <- i
		}
		run.mu.Unlock()
	}
	w, rate := outageWeights(o.Mix, o.Rate, o.CheckRate)
	windows := []load.Window{{Name: outageWindows[0], Duration: o.Before}, {Name: outageWindows[1], Duration: o.Down}, {Name: outageWindows[2], Duration: o.After}}
	cfg := load.Config{
		URL: d.url, Users: o.Users, Rate: rate, Weights: w, WarmUp: o.WarmUp, Windows: windows, Checks: programs, LagRate: -1,
		OnWindow: func(i int) {
			switch i {
			case 1:
				fake.SetDown(true)
			case 2:
				fake.SetDown(false)
			}
			mark(i)
		},
		OnPhase: func(p string) {
			if p == "finish" {
				run.mu.Lock()
				n := len(run.marks)
				run.mu.Unlock()
				if n == len(outageWindows) {
					mark(n)
				}
			}
		},
		Progress: func(p load.Progress) { b.say("[checker outage] %s", p) },
	}
	b.say("checker outage: %d students, %.0f tasks/s (%s, in hundredths of a task/s), windows of %s, %s and %s after %s of warm-up",
		o.Users, rate, w, o.Before, o.Down, o.After, o.WarmUp)
	lr, err := load.Run(ctx, cfg)
	// The fake comes back even when the run stopped early, so that the
	// checks waiting for it can end.
	fake.SetDown(false)
	close(marks)
	markWG.Wait()
	if err != nil {
		return err
	}
	b.printTable(lr)
	res.Load = &lr

	waitStart := time.Now()
	ids := acceptedIDs(lr.Checks)
	b.say("checker outage: waiting (at most %s) for the %d accepted checks to be final", o.Settle, len(ids))
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	waitErr := waitChecksFinal(ctx, conn, ids, waitStart.Add(o.Settle))
	stopBreaker()
	res.Checks.WaitedSeconds = time.Since(waitStart).Seconds()
	rows, err := storedChecks(ctx, conn)
	if err != nil {
		return err
	}
	completed, err := completedChecks(ctx, ns.url)
	if err != nil {
		return err
	}
	end := outageMark{at: time.Now(), fake: fake.Stats(), calls: scrapeSeries(metrics, "quizstream_checker_calls_total")}
	run.mu.Lock()
	defer run.mu.Unlock()
	if len(run.marks) != len(outageWindows)+1 {
		return fmt.Errorf("the load ran %d of its %d windows", max(len(run.marks)-1, 0), len(outageWindows))
	}
	res.fill(lr, run.marks, end, run.breaker)
	res.Checks = summarizeChecks(lr.Checks, rows, completed, run.marks[2].at, res.Checks.WaitedSeconds)
	if waitErr != nil {
		res.Checks.Problems = append(res.Checks.Problems, waitErr.Error())
	}
	b.say("checker outage: %s", res.Checks)
	return nil
}

// outagePrograms returns, for every exercise of the seeded content and
// each of its languages, a program the fake Judge0 runs as a solution
// that passes every test case, hidden ones too.
func outagePrograms(ctx context.Context, dbURL string) ([]load.CheckProgram, error) {
	st, err := store.Open(ctx, store.Config{URL: dbURL, MaxConns: 2})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	courses, err := st.LoadContent(ctx)
	if err != nil {
		return nil, err
	}
	var out []load.CheckProgram
	for _, c := range courses {
		for _, e := range c.Exercises {
			for _, lang := range e.Languages {
				out = append(out, load.CheckProgram{ExerciseID: e.ID.String(), Language: lang, Source: fakeSolution(lang, e.Tests)})
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the seeded content has no exercise")
	}
	return out, nil
}

// fakeSolution writes a program whose judge0test directives (in comments
// of the language) print each test case's expected output.
func fakeSolution(lang string, tests []store.TestCase) string {
	comment := "//"
	if lang == "python" || lang == "ruby" || lang == "bash" {
		comment = "#"
	}
	var b strings.Builder
	for _, t := range tests {
		fmt.Fprintf(&b, "%s judge0test: %s -> %s\n", comment, strconv.Quote(t.Stdin), strconv.Quote(t.Stdout))
	}
	return b.String()
}

func acceptedIDs(sent []load.SentCheck) []uuid.UUID {
	var ids []uuid.UUID
	for _, c := range sent {
		if id, err := uuid.Parse(c.CheckID); c.Accepted && err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// waitChecksFinal waits until every check of ids is stored with a final
// status, or until deadline (an error).
func waitChecksFinal(ctx context.Context, conn *pgx.Conn, ids []uuid.UUID, deadline time.Time) error {
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM checks WHERE id = ANY($1) AND status IN ('passed', 'failed', 'error')`, ids).Scan(&n)
		if err != nil {
			return err
		}
		if n == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d accepted checks not final when the wait ended", len(ids)-n, len(ids))
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// checkRow is a stored check.
type checkRow struct {
	id        uuid.UUID
	status    string
	submitted time.Time
	finished  *time.Time
}

func storedChecks(ctx context.Context, conn *pgx.Conn) ([]checkRow, error) {
	rows, _ := conn.Query(ctx, `SELECT id, status, submitted_at, finished_at FROM checks`)
	var out []checkRow
	var r checkRow
	_, err := pgx.ForEachRow(rows, []any{&r.id, &r.status, &r.submitted, &r.finished}, func() error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// completedChecks returns, per check id, how many CodeCheckCompleted
// events the code-checks stream holds.
func completedChecks(ctx context.Context, url string) (map[uuid.UUID]int, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, streams.DefaultCheckStreamName)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.CheckSubjectPrefix+".*.*.completed"))
	if err != nil {
		return nil, err
	}
	out := map[uuid.UUID]int{}
	for subj, n := range info.State.Subjects {
		parts := strings.Split(subj, ".")
		if len(parts) < 4 {
			continue
		}
		if id, err := uuid.Parse(parts[3]); err == nil {
			out[id] += int(n) //nolint:gosec // G115: a count of messages on one subject
		}
	}
	return out, nil
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
