package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quizstream/quizstream/bench/load"
)

// report is everything a `make bench` found; it is written as JSON and
// rendered as Markdown.
type report struct {
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Quick    bool           `json:"quick,omitempty"`
	Machine  machine        `json:"machine"`
	Versions versions       `json:"versions"`
	Options  options        `json:"options"`
	Designs  []designResult `json:"designs"`
	Ratios   []ratio        `json:"ratios"`
	// Ceiling is synchronous single publishes at rising concurrency.
	Ceiling          []ceilingRun `json:"publish_ceiling"`
	CeilingError     string       `json:"publish_ceiling_error,omitempty"`
	EventsBench      []string     `json:"events_bench,omitempty"`
	EventsBenchError string       `json:"events_bench_error,omitempty"`
	// Backlog is the backlog phase (issue 8's target).
	Backlog *backlogResult `json:"backlog,omitempty"`
	// Outage is the checker-outage phase (issue 17).
	Outage *outageResult `json:"checker_outage,omitempty"`
	// Floor is the trivial server's run (bench/cmd/floor), the unit of
	// CPU per request.
	Floor *runRecord `json:"floor,omitempty"`
}

type machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemoryMB int64  `json:"memory_mib"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
}

type versions struct {
	Quizstream       string            `json:"quizstream_commit"`
	Go               string            `json:"go"`
	NATSServer       string            `json:"nats_server"`
	NATSSyncAlways   bool              `json:"nats_sync_always"`
	PostgreSQL       string            `json:"postgresql"`
	PostgresSettings map[string]string `json:"postgresql_settings"`
}

type designResult struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Runs        []runRecord `json:"runs"`
	// MaxRate is the highest open-model rate at which every task's p99
	// stayed within the bound (0: none); FirstFailedRate the lowest that
	// did not (0: none tried).
	MaxRate         float64  `json:"max_rate_within_p99"`
	FirstFailedRate float64  `json:"first_failed_rate"`
	Notes           []string `json:"notes,omitempty"`
}

type runRecord struct {
	Design string  `json:"design"`
	Kind   string  `json:"kind"` // mix, post, open
	Users  int     `json:"users"`
	Rate   float64 `json:"rate,omitempty"`
	// Pass and Why are the open model's verdict against the p99 bound.
	Pass   *bool        `json:"pass,omitempty"`
	Why    string       `json:"why,omitempty"`
	Result *load.Result `json:"result,omitempty"`
	Error  string       `json:"error,omitempty"`
	// CPU is each tier's CPU seconds during the measured window (the
	// exam workload's: its logins and the exam).
	CPU map[string]float64 `json:"cpu_s,omitempty"`
	// LoginCPU is the exam workload's logins' share of CPU.
	LoginCPU map[string]float64 `json:"login_cpu_s,omitempty"`
	// PeakRSSKiB is VmHWM over the run (reset before it when PeakRSSReset).
	PeakRSSKiB   map[string]int64 `json:"peak_rss_kib,omitempty"`
	PeakRSSReset bool             `json:"peak_rss_reset"`
	// LoadAvgBefore and LoadAvgAfter are /proc/loadavg's three averages
	// when the measured window opened and closed.
	LoadAvgBefore string `json:"loadavg_before,omitempty"`
	LoadAvgAfter  string `json:"loadavg_after,omitempty"`
	// Disk is the store's disk during the measured window, whoever used it.
	Disk *diskActivity `json:"disk,omitempty"`
	// Publish is how the API published attempts over the whole run
	// (quizstream only).
	Publish *publishing `json:"publishing,omitempty"`
}

// ratio is one comparison of quizstream with the baseline.
type ratio struct {
	What       string  `json:"what"`
	Quizstream float64 `json:"quizstream"`
	Baseline   float64 `json:"baseline"`
	// Factor is how many times better quizstream is: quizstream/baseline
	// for throughputs, baseline/quizstream for latencies and costs.
	Factor float64 `json:"factor"`
	Unit   string  `json:"unit"`
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemoryMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func (r *report) design(name string) *designResult {
	for i := range r.Designs {
		if r.Designs[i].Name == name {
			return &r.Designs[i]
		}
	}
	return nil
}

func (d *designResult) run(kind string) *runRecord {
	if d == nil {
		return nil
	}
	for i := range d.Runs {
		if d.Runs[i].Kind == kind && d.Runs[i].Result != nil {
			return &d.Runs[i]
		}
	}
	return nil
}

// cpuPerRequest is the stack's CPU milliseconds per answered request of
// the measured window: api, worker, nats-server and the backends of the
// design's database (PostgreSQL's shared background processes left out,
// since other databases use them too).
func (rec *runRecord) cpuPerRequest() float64 {
	if rec == nil || rec.Result == nil || rec.CPU == nil || rec.Result.Total.Requests == 0 {
		return 0
	}
	c := rec.CPU
	total := c[tierAPI] + c[tierWorker] + c[tierNATS] + c[tierPostgresDB]
	return total * 1000 / float64(rec.Result.Total.Requests)
}

// compute fills the ratios of quizstream to the baseline.
func (r *report) compute(o options) {
	qs, base := r.design("quizstream"), r.design("baseline")
	if qs == nil || base == nil {
		return
	}
	add := func(what, unit string, q, b float64, higherBetter bool) {
		if q == 0 || b == 0 {
			return
		}
		f := b / q
		if higherBetter {
			f = q / b
		}
		r.Ratios = append(r.Ratios, ratio{What: what, Quizstream: q, Baseline: b, Factor: f, Unit: unit})
	}
	for _, kind := range []string{runMix, runPost} {
		q, b := qs.run(kind), base.run(kind)
		if q == nil || b == nil {
			continue
		}
		label := map[string]string{runMix: fmt.Sprintf("mix, %d students", o.Users), runPost: fmt.Sprintf("POST only, %d students", o.Users)}[kind]
		add(label+": throughput", "req/s", q.Result.Total.RPS, b.Result.Total.RPS, true)
		if qt, ok := q.Result.Task(load.TaskSubmit); ok {
			bt, _ := b.Result.Task(load.TaskSubmit)
			add(label+": attempt POSTs", "req/s", qt.RPS, bt.RPS, true)
			add(label+": attempt POST p99", "ms", qt.Latency.P99, bt.Latency.P99, false)
		}
		add(label+": p99, all tasks", "ms", q.Result.Total.Latency.P99, b.Result.Total.Latency.P99, false)
		add(label+": CPU per request, all tiers", "ms", q.cpuPerRequest(), b.cpuPerRequest(), false)
	}
	add(fmt.Sprintf("open model: highest rate with every p99 <= %s", o.P99Limit), "tasks/s", qs.MaxRate, base.MaxRate, true)
}

// write writes the report as <dir>/<date>.md and .json (with the time
// added when that date has results already) and returns their paths.
func (r *report) write(dir string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	name := r.Started.Format("2006-01-02")
	if _, err := os.Stat(filepath.Join(dir, name+".md")); err == nil {
		name = r.Started.Format("2006-01-02-150405")
	}
	md, js := filepath.Join(dir, name+".md"), filepath.Join(dir, name+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(js, append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	f, err := os.Create(md)
	if err != nil {
		return "", "", err
	}
	if err := r.writeMarkdown(f); err != nil {
		f.Close()
		return "", "", err
	}
	return md, js, f.Close()
}

// rerender writes the Markdown of the results JSON file at path beside it
// (same name, .md), after a change of the report's layout; it returns the
// first error.
func rerender(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.Create(strings.TrimSuffix(path, filepath.Ext(path)) + ".md")
	if err != nil {
		return err
	}
	if err := r.writeMarkdown(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s" }

// writeMarkdown renders the report; it returns the first write error.
func (r *report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.Options
	p("# quizstream benchmark, %s\n\n", r.Started.Format("2006-01-02"))
	p("`make bench` (bench/cmd/stackbench), %s to %s UTC (%s).\n\n", r.Started.Format("15:04:05"), r.Finished.Format("15:04:05"),
		r.Finished.Sub(r.Started).Round(time.Second))

	if shares := r.otherShares(); len(shares) > 0 {
		p("**Conditions**: programs outside the benchmark took %.0f%% to %.0f%% of the CPUs during the measured windows (median %.0f%%); see the CPU table. Figures from a machine shared like this understate both designs, the tails most.\n\n",
			shares[0]*100, shares[len(shares)-1]*100, shares[len(shares)/2]*100)
	}
	p("## Machine and versions\n\n")
	m, v := r.Machine, r.Versions
	p("| | |\n|---|---|\n")
	p("| CPUs | %d (%s) |\n| memory | %d MiB |\n| kernel | %s (%s) |\n| Go | %s |\n", m.CPUs, m.CPUModel, m.MemoryMB, m.Kernel, m.OS, v.Go)
	p("| quizstream commit | %s |\n| NATS server | %s, built from go.mod's pin; JetStream sync_always: %v |\n", v.Quizstream, v.NATSServer, v.NATSSyncAlways)
	p("| PostgreSQL | %s", v.PostgreSQL)
	keys := make([]string, 0, len(v.PostgresSettings))
	for k := range v.PostgresSettings {
		if k != "server_version" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		p("; %s %s", k, v.PostgresSettings[k])
	}
	p(" |\n\n")

	if o.Only != "" {
		writeBacklog(&b, r.Backlog, r.Machine.CPUs)
		writeOutage(&b, r.Outage, r.Machine.CPUs)
		_, err := io.WriteString(w, b.String())
		return err
	}

	p("## Settings\n\n")
	p("- Every figure at full durability: quizstream answers 202 after the PubAck of an R1 file stream on a server that fsyncs every write (`sync_interval: always`); the baseline after PostgreSQL's commit (`synchronous_commit` %s).\n", v.PostgresSettings["synchronous_commit"])
	p("- Closed loop: %d students, think time 0, warm-up %s after every signup, then %s (mix) and %s (POST only) measured.\n", o.Users, secs(o.WarmUp), secs(o.MixDuration), secs(o.PostDuration))
	p("- Open model: %d students, arrivals at a constant rate from %.0f/s, x%g per step (plus %d bisection steps), each %s warm-up + %s measured; latency from each task's due time (no coordinated omission); a rate passes when every task's p99 <= %s with no failed try and a clean check, and fails when %d runs in a row at it failed.\n",
		o.OpenUsers, o.OpenStart, o.OpenFactor, o.OpenRefine, secs(o.OpenWarmUp), secs(o.OpenDuration), o.P99Limit, o.OpenConfirm+1)
	p("- Mix: %s (content = course list, a course or a quiz, half of them with If-None-Match when the student has an ETag; attempts = the first page of the student's own). 5%% of the 202s are re-sent with the same Idempotency-Key. Every HTTP try is timed on its own (the client's retries off); 503 and 429 are counted, not timed, and tried again with the same key.\n", load.DefaultWeights)
	p("- After each run the load tool checks that every Idempotency-Key answered 202 reads back as recorded with the score and submitted_at of its 202, is listed exactly once in the student's attempts, and that every student's progress counts exactly those attempts (counts and best scores).\n")
	p("- Lag 202 -> recorded: up to 10 accepted attempts a second are read at once and then every 20 ms until they read as recorded (an upper bound; its floor is one GET).\n")
	p("- The load generator runs on the same %d CPUs as every tier (in stackbench's process%s); its CPU time is listed. PostgreSQL is the machine's shared server: other databases' activity there would show in its CPU time (the `postgres-db` column counts only the backends of the benchmark's own database).\n\n", m.CPUs, gcOf(o.LoadGOGC))
	for _, d := range r.Designs {
		p("- **%s**: %s.\n", d.Name, d.Description)
	}
	p("\n")

	if len(r.Ratios) > 0 {
		p("## quizstream against the baseline\n\n| | quizstream | baseline | factor |\n|---|---:|---:|---:|\n")
		for _, x := range r.Ratios {
			p("| %s | %.1f %s | %.1f %s | **%.2fx** |\n", x.What, x.Quizstream, x.Unit, x.Baseline, x.Unit, x.Factor)
		}
		p("\nThe factor is how many times better quizstream does: throughput divided by the baseline's, or the baseline's latency or cost divided by quizstream's.\n\n")
	}

	for _, kind := range []string{runMix, runPost} {
		title := map[string]string{runMix: "Exam-day mix", runPost: "Attempt POSTs only"}[kind]
		p("## %s, closed loop, %d students, no think time\n\n", title, o.Users)
		for _, d := range r.Designs {
			rec := d.run(kind)
			p("**%s**", d.Name)
			if rec == nil {
				p(": no result. %s\n\n", errorOf(d, kind))
				continue
			}
			p(" (%.0f answered requests/s):\n\n", rec.Result.Total.RPS)
			taskTable(&b, *rec.Result)
			p("\n")
		}
	}

	p("## Open model: constant arrival rate\n\n")
	for _, d := range r.Designs {
		p("**%s**: highest rate with every task's p99 <= %s: **%.0f tasks/s**", d.Name, o.P99Limit, d.MaxRate)
		if d.FirstFailedRate > 0 {
			p(" (first rate over it: %.0f/s)", d.FirstFailedRate)
		}
		p(".\n\n| rate | answered/s | content p99 | user p99 | progress p99 | attempts p99 | submit p99 | max | failed tries | check | verdict |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
		for _, rec := range d.Runs {
			if rec.Kind != runOpen {
				continue
			}
			if rec.Result == nil {
				p("| %.0f | | | | | | | | | | error: %s |\n", rec.Rate, rec.Error)
				continue
			}
			res := rec.Result
			p("| %.0f | %.0f |", rec.Rate, res.Total.RPS)
			for _, name := range []string{load.TaskContent, load.TaskUser, load.TaskProgress, load.TaskAttempts, load.TaskSubmit} {
				t, _ := res.Task(name)
				p(" %.1f |", t.Latency.P99)
			}
			verdict := "pass"
			if rec.Pass != nil && !*rec.Pass {
				verdict = "fail: " + rec.Why
			}
			p(" %.1f | %d | %s | %s |\n", res.Total.Latency.Max, res.Total.Errors+res.Total.Unavailable+res.Total.RateLimited, checkWord(res), verdict)
		}
		p("\n")
	}

	writeExams(&b, r)
	writeFloor(&b, r)

	p("## CPU seconds per tier in the measured window, peak RSS\n\n")
	p("| design | run | api | worker | nats-server | postgres (all) | postgres (bench db backends) | load generator | other programs | machine: programs | machine: irq, steal | load avg | disk writes/s, flushes/s, busy | stack CPU ms / request | api peak RSS | worker peak RSS |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n")
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			if rec.CPU == nil {
				continue
			}
			name := rec.Kind
			if rec.Rate > 0 {
				name += fmt.Sprintf(" %.0f/s", rec.Rate)
			}
			c := rec.CPU
			disk := "-"
			if k := rec.Disk; k != nil {
				disk = fmt.Sprintf("%.0f, %.0f, %.0f%%", k.WritesPerS, k.FlushesPerS, k.BusyPct)
			}
			p("| %s | %s | %.1f | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f, %.1f | %s -> %s | %s | %.2f | %s | %s |\n", d.Name, name, c[tierAPI], optional(c, tierWorker),
				c[tierNATS], c[tierPostgres], c[tierPostgresDB], c[tierLoad], c[tierOther], c[tierMachine], c[tierIRQ], c[tierSteal],
				firstOf(rec.LoadAvgBefore), firstOf(rec.LoadAvgAfter), disk, rec.cpuPerRequest(),
				mib(rec.PeakRSSKiB[tierAPI]), mib(rec.PeakRSSKiB[tierWorker]))
		}
	}
	p("\nCPU seconds are read from /proc/<pid>/stat when the measured window opens and closes (PostgreSQL (all): every postgres process, plus the postmaster's reaped children; bench db backends: the backends connected to the design's own database). Machine: programs is every CPU's user + system time (/proc/stat), and other programs is that less every column before it: programs outside the benchmark competing for the %d CPUs (tests of other work on a shared machine, say). Interrupt time (loopback networking, mostly) and time stolen by the hypervisor are apart. Load avg is the 1-minute load average as the window opened and closed. Disk is the device holding the NATS store: writes and flushes (what an fsync becomes) per second and the share of the window with I/O in flight, whoever caused them. Stack CPU per request is api + worker + nats-server + bench db backends per answered request. Peak RSS is VmHWM, reset before each run.\n\n", r.Machine.CPUs)

	var noisy []string
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			if rec.CPU == nil || rec.Result == nil || rec.Result.Window == 0 || r.Machine.CPUs == 0 {
				continue
			}
			share := rec.CPU[tierOther] / (rec.Result.Window * float64(r.Machine.CPUs))
			if share > 0.05 {
				noisy = append(noisy, fmt.Sprintf("%s %s%s (%.0f%%)", d.Name, rec.Kind, rateOf(rec), share*100))
			}
		}
	}
	if len(noisy) > 0 {
		p("**The machine was shared**: programs outside the benchmark took over 5%% of the CPUs during %s. Those windows measured the stack with less than the whole machine; compare runs with little or no such share.\n\n", strings.Join(noisy, ", "))
	}

	p("## Lag from 202 to recorded, exactly-once check\n\n")
	p("Lag: sampled 202s read at once, then every 20 ms, until they read as recorded. The baseline stores an attempt before its 202, so its lag is only the time of that first read (one GET under the load); quizstream's adds the worker's batching (a fetch waits up to BATCH_MAX_WAIT, 100 ms, to fill a batch) and the batch's transaction.\n\n")
	p("| design | run | lag p50 | lag p99 | lag max | samples | failed reads | 202s | re-sent | keys checked | recorded once | all recorded after the load | check |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			res := rec.Result
			if res == nil || res.Exam != nil {
				continue
			}
			name := rec.Kind
			if rec.Rate > 0 {
				name += fmt.Sprintf(" %.0f/s", rec.Rate)
			}
			var keys, once int
			var settle float64
			if v := res.Verify; v != nil {
				keys, once, settle = v.Keys, min(v.Recorded, v.Listed), v.SettleSeconds
			}
			p("| %s | %s | %.1f ms | %.1f ms | %.1f ms | %d | %d of %d | %d | %d | %d | %d | %.1f s | %s |\n", d.Name, name, res.Lag.P50, res.Lag.P99, res.Lag.Max,
				res.Lag.Count, res.LagPollErrors, res.LagPolls, res.Accepted, res.Resends, keys, once, settle, checkWord(res))
		}
	}
	p("\n")
	var pubRows []string
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			if pb := rec.Publish; pb != nil {
				pubRows = append(pubRows, fmt.Sprintf("| %s | %s%s | %.0f | %.0f | %.1f | %.0f | %.0f | %.0f | %.0f |", d.Name, rec.Kind, rateOf(rec),
					pb.Batches, pb.InBatches, pb.MeanBatch, pb.Unbatched, pb.Resends, pb.Held, pb.Alone))
			}
		}
	}
	if len(pubRows) > 0 {
		p("How the API published events over each whole run (its own metrics, every family): atomic batches, the events in them, the events it published one at a time, the batches refused for a duplicate and sent again without it, the retries its tail answered without a publish, and the re-sends it sent alone (their id sent lately) rather than in a batch they would get refused.\n\n")
		p("| design | run | atomic batches | events in batches | mean batch | one at a time | batches re-sent without a duplicate | retries answered by the tail | re-sends sent alone |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		p("%s\n\n", strings.Join(pubRows, "\n"))
	}
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			if res := rec.Result; res != nil && res.Verify != nil && len(res.Verify.Problems) > 0 {
				p("Problems found by the check of %s %s: %s\n\n", d.Name, rec.Kind, strings.Join(res.Verify.Problems, "; "))
			}
			if rec.Error != "" {
				p("Error of %s %s: %s\n\n", d.Name, rec.Kind, rec.Error)
			}
		}
		for _, n := range d.Notes {
			p("Note on %s: %s\n\n", d.Name, n)
		}
	}

	p("## Publish ceiling at the same durability\n\n")
	p("Synchronous single-message publishes, each with an attempt's headers (own subject, Nats-Msg-Id, expected last subject sequence 0) and an encoded 10-answer event, on one connection to the same server, into a stream of their own, %s per concurrency: the ceiling without coalescing (the API's path when atomic batches are off or a batch cannot be used):\n\n", secs(o.CeilingDuration))
	if r.CeilingError != "" {
		p("Error: %s\n\n", r.CeilingError)
	}
	p("| when | publishers in flight | messages/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Ceiling {
		p("| %s | %d | %.0f | %.2f ms | %.2f ms | %d |\n", c.When, c.Publishers, c.PerSecond, c.P50, c.P99, c.Errors)
	}
	p("\n")
	switch {
	case len(r.EventsBench) > 0:
		p("`go test ./eventlog -run '^$' -bench .` (the coalescing publisher):\n\n```\n%s\n```\n", strings.Join(r.EventsBench, "\n"))
		if r.EventsBenchError != "" {
			p("\n%s\n", r.EventsBenchError)
		}
	case r.EventsBenchError != "":
		p("`go test ./eventlog -bench`: %s.\n", r.EventsBenchError)
	}
	if r.Outage != nil {
		p("\n")
		writeOutage(&b, r.Outage, r.Machine.CPUs)
	}
	if r.Backlog != nil {
		p("\n")
		writeBacklog(&b, r.Backlog, r.Machine.CPUs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// otherShares returns, sorted, the share of the CPUs that programs outside
// the benchmark took in each measured window.
func (r *report) otherShares() []float64 {
	var out []float64
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			if rec.CPU != nil && rec.Result != nil && rec.Result.Window > 0 && r.Machine.CPUs > 0 {
				out = append(out, rec.CPU[tierOther]/(rec.Result.Window*float64(r.Machine.CPUs)))
			}
		}
	}
	sort.Float64s(out)
	return out
}

func taskTable(b *strings.Builder, r load.Result) {
	fmt.Fprintf(b, "| task | requests | req/s | 304 | 503 | 429 | errors | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(t load.TaskResult) {
		l := t.Latency
		fmt.Fprintf(b, "| %s | %d | %.0f | %d | %d | %d | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2f ms |\n", t.Name, t.Requests, t.RPS,
			t.NotModified, t.Unavailable, t.RateLimited, t.Errors, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	for _, t := range r.Tasks {
		row(t)
	}
	row(r.Total)
	row(r.Signup)
}

func errorOf(d designResult, kind string) string {
	for _, rec := range d.Runs {
		if rec.Kind == kind && rec.Error != "" {
			return rec.Error
		}
	}
	return ""
}

func checkWord(r *load.Result) string {
	switch {
	case r.Verify == nil:
		return "skipped"
	case r.Verify.OK:
		return "ok"
	}
	return "FAILED"
}

func optional(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%.1f", v)
	}
	return "-"
}

func rateOf(rec runRecord) string {
	if rec.Rate > 0 {
		return fmt.Sprintf(" %.0f/s", rec.Rate)
	}
	return ""
}

func firstOf(loadavg string) string {
	f, _, _ := strings.Cut(loadavg, " ")
	return f
}

func mib(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(kib)/1024)
}

// gcOf says the load generator's collector target, when the run recorded it.
func gcOf(gogc string) string {
	if gogc == "" {
		return ""
	}
	return ", its collector at GOGC=" + gogc
}
