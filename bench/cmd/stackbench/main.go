// Command stackbench is `make bench`: it starts a production-like stack
// on this machine (separate `quizstream api` and `quizstream worker`
// processes, a NATS server built from the version go.mod pins, running
// JetStream with every write fsynced before its ack, and the local
// PostgreSQL with a fresh database), drives it with the load tool
// (package bench/load), then does the same to the baseline (package
// bench/baseline: the same API writing each attempt with a synchronous
// insert), and writes every figure with the machine, the versions and the
// settings to bench/results/<date>.md and .json.
//
// Runs, for each design: the exam-day mix at -users students in a closed
// loop with no think time; attempt POSTs alone, likewise; and the mix at
// a constant arrival rate rising by -open-factor from -open-start, to find
// the highest rate at which every task's p99 stays within -p99. Then the
// ceiling of single synchronous publishes on the same server; the
// checker-outage phase (outage.go: one fixed-rate load of attempts, reads
// and code checks with the Judge0 the checker role calls up, down, then
// back; `-only checker-outage` runs it alone); the backlog phase (backlog.go: -backlog attempts published with no worker running,
// drained by a `quizstream worker` started afterwards, against the same
// rows written with COPY + INSERT ... ON CONFLICT, issue 8's target;
// `-only backlog` runs it alone); and the eventlog package's Go benchmarks
// when it has some. Traffic goes to 127.0.0.1 only. It prints a progress
// line a second on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quizstream/quizstream/bench/load"
)

func main() {
	load.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "stackbench:", err)
		os.Exit(1)
	}
}

// options are the benchmark's settings; the results record them.
type options struct {
	Out             string        `json:"-"`
	AdminURL        string        `json:"-"`
	Users           int           `json:"users"`
	WarmUp          time.Duration `json:"warm_up_ns"`
	MixDuration     time.Duration `json:"mix_duration_ns"`
	PostDuration    time.Duration `json:"post_duration_ns"`
	OpenUsers       int           `json:"open_users"`
	OpenStart       float64       `json:"open_start_rate"`
	OpenFactor      float64       `json:"open_factor"`
	OpenMax         float64       `json:"open_max_rate"`
	OpenRefine      int           `json:"open_refine_steps"`
	OpenConfirm     int           `json:"open_confirm_runs"`
	OpenWarmUp      time.Duration `json:"open_warm_up_ns"`
	OpenDuration    time.Duration `json:"open_duration_ns"`
	P99Limit        time.Duration `json:"p99_limit_ns"`
	CeilingDuration time.Duration `json:"ceiling_duration_ns"`
	SkipBaseline    bool          `json:"skip_baseline"`
	SkipEventsBench bool          `json:"skip_events_bench"`
	// Backlog is the attempts of the backlog phase; 0 skips it.
	Backlog int `json:"backlog"`
	// BacklogWorkerEnv is settings (NAME=value) of the backlog's worker
	// on top of its defaults.
	BacklogWorkerEnv []string `json:"backlog_worker_env,omitempty"`
	// Only, when set, runs that phase alone ("backlog" or
	// "checker-outage").
	Only string `json:"only,omitempty"`
	// Outage is the checker-outage phase (outage.go).
	Outage outageOptions `json:"checker_outage"`
	// The exam workload (exam.go), on quizstream alone: ExamUsers
	// students, the sprint's time limit and grace, the logins' spread and
	// the submits' window; SkipExam skips it. SkipFloor skips the floor.
	ExamUsers        int           `json:"exam_users"`
	ExamLimit        time.Duration `json:"exam_limit_ns"`
	ExamGrace        time.Duration `json:"exam_grace_ns"`
	ExamLoginSpread  time.Duration `json:"exam_login_spread_ns"`
	ExamSubmitWindow time.Duration `json:"exam_submit_window_ns"`
	SkipExam         bool          `json:"skip_exam"`
	SkipFloor        bool          `json:"skip_floor"`
	// LoadGOGC is the load generator's collector target (load.TuneGC).
	LoadGOGC string `json:"load_gogc,omitempty"`
	Keep     bool   `json:"-"`
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("stackbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Out, "out", "bench/results", "directory of the results files")
	fs.StringVar(&o.AdminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL database to connect to for creating and dropping the benchmark's databases")
	fs.IntVar(&o.Users, "users", 500, "students of the closed-loop runs")
	fs.DurationVar(&o.WarmUp, "warmup", 5*time.Second, "warm-up of the closed-loop runs (after every signup)")
	fs.DurationVar(&o.MixDuration, "mix-duration", 30*time.Second, "measured time of the closed-loop mix")
	fs.DurationVar(&o.PostDuration, "post-duration", 15*time.Second, "measured time of the closed-loop POST-only run")
	fs.IntVar(&o.OpenUsers, "open-users", 100, "students of the open-model runs")
	fs.Float64Var(&o.OpenStart, "open-start", 250, "first arrival rate of the open model, tasks/s")
	fs.Float64Var(&o.OpenFactor, "open-factor", 1.6, "each open-model rate is the previous times this")
	fs.Float64Var(&o.OpenMax, "open-max", 20000, "highest arrival rate tried")
	fs.IntVar(&o.OpenRefine, "open-refine", 1, "bisection steps between the last rate that passed and the first that failed")
	fs.IntVar(&o.OpenConfirm, "open-confirm", 1, "runs again at a rate that failed before taking it as failed")
	fs.DurationVar(&o.OpenWarmUp, "open-warmup", 2*time.Second, "warm-up of each open-model rate")
	fs.DurationVar(&o.OpenDuration, "open-duration", 6*time.Second, "measured time of each open-model rate")
	fs.DurationVar(&o.P99Limit, "p99", 50*time.Millisecond, "the open model's bound on every task's p99")
	fs.DurationVar(&o.CeilingDuration, "ceiling-duration", 3*time.Second, "time of each concurrency of the publish ceiling")
	fs.BoolVar(&o.SkipBaseline, "skip-baseline", false, "measure quizstream only")
	fs.BoolVar(&o.SkipEventsBench, "skip-events-bench", false, "do not run the eventlog package's Go benchmarks")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (binaries, server logs, NATS store)")
	fs.IntVar(&o.Backlog, "backlog", 1000000, "attempts of the backlog phase (published with no worker running, then drained by one, against COPY + INSERT ... ON CONFLICT of the same rows); 0 skips it")
	fs.Func("backlog-worker-env", "a setting of the backlog phase's worker on top of its defaults, NAME=value (repeatable), e.g. WORKERS=2", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return fmt.Errorf("%q is not NAME=value", v)
		}
		o.BacklogWorkerEnv = append(o.BacklogWorkerEnv, v)
		return nil
	})
	fs.StringVar(&o.Only, "only", "", `run one phase alone: "backlog" or "checker-outage"`)
	outageFlags(fs, &o.Outage)
	fs.IntVar(&o.ExamUsers, "exam-users", 2000, "students of the exam workload (run once from many addresses, once from one)")
	fs.DurationVar(&o.ExamLimit, "exam-limit", 3*time.Minute, "the exam's time limit (the demo sprint's, set for the run)")
	fs.DurationVar(&o.ExamGrace, "exam-grace", 5*time.Second, "the exam's grace after its deadline")
	fs.DurationVar(&o.ExamLoginSpread, "exam-login-spread", time.Minute, "the exam's logins spread evenly over this")
	fs.DurationVar(&o.ExamSubmitWindow, "exam-submit-window", time.Minute, "the exam's submits fall within this before the deadline")
	fs.BoolVar(&o.SkipExam, "skip-exam", false, "do not run the exam workload")
	fs.BoolVar(&o.SkipFloor, "skip-floor", false, "do not measure the floor (a trivial Echo server through the same load tool)")
	render := fs.String("render", "", "only write the Markdown of a results JSON file again, beside it")
	quick := fs.Bool("quick", false, "a short smoke run: 50 students, 3s windows, two open rates, an exam of 100 students on a 30s sprint, a backlog of 20000, a checker outage of 5s windows at 60/s (the -backlog, -exam-* and -outage-* given stay), results not written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *render != "" {
		return rerender(*render)
	}
	if o.Only != "" && o.Only != onlyBacklog && o.Only != onlyOutage {
		return fmt.Errorf("-only %q: the phases that run alone are %q and %q", o.Only, onlyBacklog, onlyOutage)
	}
	if o.Only == onlyBacklog && o.Backlog <= 0 {
		return errors.New("-only backlog needs -backlog above 0")
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["backlog"] {
			o.Backlog = 20000
		}
		o.Users, o.WarmUp, o.MixDuration, o.PostDuration = 50, time.Second, 3*time.Second, 3*time.Second
		o.OpenUsers, o.OpenStart, o.OpenMax, o.OpenRefine, o.OpenConfirm, o.OpenWarmUp, o.OpenDuration = 20, 100, 150, 0, 0, time.Second, 2*time.Second
		o.CeilingDuration, o.SkipEventsBench = time.Second, true
		// The exam's settings given on the command line stay.
		quickExam := map[string]func(){
			"exam-users": func() { o.ExamUsers = 100 }, "exam-limit": func() { o.ExamLimit = 30 * time.Second },
			"exam-grace": func() { o.ExamGrace = 2 * time.Second }, "exam-login-spread": func() { o.ExamLoginSpread = 10 * time.Second },
			"exam-submit-window": func() { o.ExamSubmitWindow = 10 * time.Second },
		}
		for name, quick := range quickExam {
			if !set[name] {
				quick()
			}
		}
		o.Outage.quick(set)
	}
	b := &bench{o: o, log: stderr, began: time.Now(), quick: *quick}
	return b.run(ctx)
}

// bench is one `make bench`.
type bench struct {
	o     options
	log   io.Writer
	began time.Time
	quick bool
	rep   report
	tmp   string
	bins  map[string]string
	pg    postgres
	nats  *natsServer
}

// say prints a progress line.
func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(b.log, "stackbench %6s  %s\n", time.Since(b.began).Round(time.Second), fmt.Sprintf(format, args...))
}

func (b *bench) run(ctx context.Context) (err error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if b.tmp, err = os.MkdirTemp("", "quizstream-bench-"); err != nil {
		return err
	}
	defer func() {
		if b.o.Keep || err != nil {
			b.say("kept %s (binaries, server logs)", b.tmp)
			return
		}
		os.RemoveAll(b.tmp)
	}()
	b.o.LoadGOGC = load.GOGC()
	b.rep = report{Started: b.began.UTC(), Options: b.o, Quick: b.quick}
	b.rep.Machine = machineInfo()

	b.say("building quizstream, the pinned nats-server and the baseline")
	if b.bins, err = build(ctx, root, b.tmp); err != nil {
		return err
	}
	b.rep.Versions.Quizstream = commitOf(b.bins["quizstream"])
	b.rep.Versions.Go = runtime.Version()

	b.pg = postgres{admin: b.o.AdminURL}
	if b.rep.Versions.PostgresSettings, err = b.pg.settings(ctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", b.o.AdminURL, err)
	}
	b.rep.Versions.PostgreSQL = b.rep.Versions.PostgresSettings["server_version"]

	suffix := time.Now().UTC().Format("20060102_150405")
	switch b.o.Only {
	case onlyBacklog:
		b.rep.Backlog = b.backlog(ctx, "quizstream_bench_"+suffix, b.o.Backlog)
		return b.finish(ctx, root)
	case onlyOutage:
		b.rep.Outage = b.outage(ctx, "quizstream_bench_"+suffix)
		return b.finish(ctx, root)
	}

	b.say("starting nats-server (JetStream, sync_interval: always)")
	if b.nats, err = startNATS(ctx, b.bins["nats-server"], b.tmp); err != nil {
		return err
	}
	defer b.nats.stop()
	v, err := b.nats.varz()
	if err != nil {
		return fmt.Errorf("nats-server /varz: %w", err)
	}
	if !v.JetStream.Config.SyncAlways {
		return errors.New("nats-server does not sync every write: the benchmark would not be at full durability")
	}
	b.rep.Versions.NATSServer, b.rep.Versions.NATSSyncAlways = v.Version, v.JetStream.Config.SyncAlways

	b.ceiling(ctx, "before the load runs, fresh server")

	// Both designs run side by side, and each scenario runs on one right
	// after the other, so that both meet the machine in the same state.
	kinds := []string{"quizstream", "baseline"}
	if b.o.SkipBaseline {
		kinds = kinds[:1]
	}
	var designs []*design
	defer func() {
		for _, d := range designs {
			d.stop()
		}
	}()
	for _, kind := range kinds {
		name := fmt.Sprintf("quizstream_bench_%s_%s", suffix, kind)
		dbURL, err := b.pg.create(ctx, name)
		if err != nil {
			return err
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := b.pg.drop(dctx, name); err != nil {
				b.say("drop database %s: %v", name, err)
			}
		}()
		b.say("database %s: migrate and seed", name)
		env := []string{"DATABASE_URL=" + dbURL, "LOG_LEVEL=warn"}
		if err := runTool(ctx, b.bins["quizstream"], env, "migrate"); err != nil {
			return err
		}
		if kind == "quizstream" {
			env = append(env, "NATS_URL="+b.nats.url)
			// The stream's settings have one owner: an operator command
			// applies them before any process starts.
			if hasCommand(ctx, b.bins["quizstream"], "stream") {
				b.say("quizstream stream apply")
				if err := runTool(ctx, b.bins["quizstream"], env, "stream", "apply"); err != nil {
					return err
				}
			}
		}
		if err := runTool(ctx, b.bins["quizstream"], env, "seed"); err != nil {
			return err
		}
		start := b.startQuizstream
		if kind == "baseline" {
			start = b.startBaseline
		}
		d, err := start(ctx, name, dbURL)
		if d != nil {
			designs = append(designs, d)
		}
		if err != nil {
			return err
		}
	}
	b.runAll(ctx, designs)
	for _, d := range designs {
		if d.name == "quizstream" && !b.o.SkipExam && ctx.Err() == nil {
			b.runExams(ctx, d)
		}
	}
	for _, d := range designs {
		d.stop()
		b.rep.Designs = append(b.rep.Designs, d.result)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	b.ceiling(ctx, "after the load runs")
	if err := b.nats.stop(); err != nil {
		b.say("nats-server: %v", err)
	}
	if !b.o.Outage.Skip && ctx.Err() == nil {
		b.rep.Outage = b.outage(ctx, "quizstream_bench_"+suffix)
	}
	if b.o.Backlog > 0 && ctx.Err() == nil {
		b.rep.Backlog = b.backlog(ctx, "quizstream_bench_"+suffix, b.o.Backlog)
	}
	if !b.o.SkipEventsBench && ctx.Err() == nil {
		b.say("go test ./eventlog -run '^$' -bench . (the coalescing publisher's benchmarks, if any)")
		b.rep.EventsBench, err = eventsBench(ctx, root)
		if err != nil {
			b.rep.EventsBenchError = err.Error()
		} else if b.rep.EventsBench == nil {
			b.rep.EventsBenchError = "package eventlog has no benchmark yet"
		}
	}
	return b.finish(ctx, root)
}

// finish computes the report and writes it (or, for a quick run, prints
// it).
func (b *bench) finish(ctx context.Context, root string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.rep.Finished = time.Now().UTC()
	b.rep.compute(b.o)
	if b.quick {
		b.say("quick run: results not written")
		return b.rep.writeMarkdown(b.log)
	}
	out := b.o.Out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	md, js, err := b.rep.write(out)
	if err != nil {
		return err
	}
	b.say("wrote %s and %s", md, js)
	return nil
}

// ceiling measures the publish ceiling on the stack's server and adds it
// to the report as taken at when.
func (b *bench) ceiling(ctx context.Context, when string) {
	b.say("publish ceiling (%s): synchronous single publishes to the same server", when)
	runs, err := publishCeiling(ctx, b.nats.url, b.o.CeilingDuration, []int{1, 16, 64, 256})
	for i := range runs {
		runs[i].When = when
	}
	b.rep.Ceiling = append(b.rep.Ceiling, runs...)
	if err != nil {
		b.rep.CeilingError = err.Error()
	}
}

// runAll measures every design, scenario by scenario: the closed-loop mix,
// POST-only, then the open model at rising rates, each rate on every
// design still within the bound, and last the bisection of each design's
// own bracket.
func (b *bench) runAll(ctx context.Context, designs []*design) {
	for _, sc := range []struct {
		kind     string
		duration time.Duration
		weights  load.Weights
	}{{runMix, b.o.MixDuration, load.DefaultWeights}, {runPost, b.o.PostDuration, load.SubmitOnly}} {
		for _, d := range designs {
			if ctx.Err() != nil {
				return
			}
			cfg := load.Config{URL: d.url, Users: b.o.Users, WarmUp: b.o.WarmUp, Duration: sc.duration, Weights: sc.weights}
			d.result.Runs = append(d.result.Runs, b.measure(ctx, d.name, sc.kind, cfg, d.tiers))
		}
		if sc.kind == runMix && !b.o.SkipFloor && ctx.Err() == nil {
			b.runFloorLoad(ctx) // right after the mix, to meet the machine as it did
		}
	}
	for rate := b.o.OpenStart; rate <= b.o.OpenMax && ctx.Err() == nil; rate = float64(int(rate*b.o.OpenFactor + 0.5)) {
		left := 0
		for _, d := range designs {
			if d.done {
				continue
			}
			if b.holds(ctx, d, rate) {
				d.passed = rate
				left++
			} else {
				d.failed, d.done = rate, true
			}
		}
		if left == 0 {
			break
		}
	}
	for _, d := range designs {
		for range b.o.OpenRefine {
			if d.failed == 0 || ctx.Err() != nil {
				break
			}
			mid := float64(int((d.passed + d.failed) / 2))
			if mid <= d.passed || mid >= d.failed {
				break
			}
			if b.holds(ctx, d, mid) {
				d.passed = mid
			} else {
				d.failed = mid
			}
		}
		d.result.MaxRate, d.result.FirstFailedRate = d.passed, d.failed
	}
}

// holds runs the open model at rate on d, and again up to OpenConfirm
// times while it fails: on a shared machine one window can catch another
// program's burst. It reports whether any run kept every p99 in bound.
func (b *bench) holds(ctx context.Context, d *design, rate float64) bool {
	for range b.o.OpenConfirm + 1 {
		cfg := load.Config{URL: d.url, Users: b.o.OpenUsers, Rate: rate, WarmUp: b.o.OpenWarmUp, Duration: b.o.OpenDuration}
		rec := b.measure(ctx, d.name, runOpen, cfg, d.tiers)
		pass, why := passes(rec, b.o.P99Limit)
		rec.Pass, rec.Why = &pass, why
		d.result.Runs = append(d.result.Runs, rec)
		if pass {
			b.say("%s open %.0f/s: every p99 within the bound", d.name, rate)
			return true
		}
		b.say("%s open %.0f/s: failed: %s", d.name, rate, why)
		if ctx.Err() != nil {
			break
		}
	}
	return false
}

// Run names.
const (
	runMix  = "mix"
	runPost = "post"
	runOpen = "open"
)

// passes says whether an open-model run kept every task's p99 within
// limit, with no failure of any kind and a clean check.
func passes(rec runRecord, limit time.Duration) (bool, string) {
	r := rec.Result
	if r == nil {
		return false, rec.Error
	}
	var why []string
	if n := r.Total.Errors + r.Total.Unavailable + r.Total.RateLimited; n > 0 {
		why = append(why, fmt.Sprintf("%d failed tries", n))
	}
	if r.Verify == nil || !r.Verify.OK {
		why = append(why, "the check failed")
	}
	ms := float64(limit) / float64(time.Millisecond)
	for _, t := range r.Tasks {
		if t.Latency.P99 > ms {
			why = append(why, fmt.Sprintf("%s p99 %.1fms", t.Name, t.Latency.P99))
		}
	}
	return len(why) == 0, strings.Join(why, ", ")
}

// measure runs one load and the samples around its measured window.
func (b *bench) measure(ctx context.Context, design, kind string, cfg load.Config, t tiers) runRecord {
	rec := runRecord{Design: design, Kind: kind, Users: cfg.Users, Rate: cfg.Rate}
	label := fmt.Sprintf("%s %s", design, kind)
	if cfg.Rate > 0 {
		label += fmt.Sprintf(" %.0f/s", cfg.Rate)
	}
	b.say("%s: %d students, %s measured after %s warm-up", label, cfg.Users, cfg.Duration, cfg.WarmUp)
	rec.PeakRSSReset = true
	for _, name := range t.rss {
		rec.PeakRSSReset = resetPeakRSS(t.pids[name]) && rec.PeakRSSReset
	}
	var mu sync.Mutex
	var before, after *sample
	cfg.OnPhase = func(phase string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case phase == "measure" && before == nil:
			s := t.sample()
			before = &s
			_, _, _, rec.LoadAvgBefore = machineCPU()
		case phase == "finish" && before != nil && after == nil:
			s := t.sample()
			after = &s
			_, _, _, rec.LoadAvgAfter = machineCPU()
		}
	}
	cfg.Progress = func(p load.Progress) { b.say("[%s] %s", label, p) }
	var pubBefore map[string]float64
	if t.metrics != "" {
		pubBefore = scrape(t.metrics, publishMetrics...)
	}
	res, err := load.Run(ctx, cfg)
	if t.metrics != "" {
		rec.Publish = publishingBetween(pubBefore, scrape(t.metrics, publishMetrics...))
	}
	if err != nil {
		rec.Error = err.Error()
		b.say("%s: %v", label, err)
		return rec
	}
	rec.Result = &res
	mu.Lock()
	if before != nil && after != nil {
		rec.CPU = cpuBetween(*before, *after)
		rec.Disk = diskBetween(before.disk, after.disk, after.at.Sub(before.at))
	}
	mu.Unlock()
	rec.PeakRSSKiB = map[string]int64{}
	for _, name := range t.rss {
		rec.PeakRSSKiB[name] = peakRSS(t.pids[name])
	}
	b.printTable(res)
	return rec
}

// printTable prints a run's table as progress lines.
func (b *bench) printTable(res load.Result) {
	var tbl strings.Builder
	_ = res.WriteTable(&tbl)
	for _, line := range strings.Split(strings.TrimRight(tbl.String(), "\n"), "\n") {
		b.say("  %s", line)
	}
}
