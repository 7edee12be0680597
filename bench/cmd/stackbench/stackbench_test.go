package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/bench/load"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, as proc(5) allows.
	line := "4242 (quiz) stream) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 12 0 100 1000 10 0"
	got, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if got.comm != "quiz) stream" || got.ppid != 1 || got.self != 3 || got.children != 0.1 {
		t.Errorf("parseStat: %+v; want comm %q, ppid 1, self 3s, children 0.1s", got, "quiz) stream")
	}
	self, err := readStat(os.Getpid())
	if err != nil || self.comm == "" {
		t.Errorf("readStat(self): %+v, %v", self, err)
	}
	if peakRSS(os.Getpid()) <= 0 {
		t.Error("peakRSS(self) is not positive")
	}
}

func TestBackendOf(t *testing.T) {
	for cmdline, want := range map[string]string{
		"postgres: 15/main: postgres quizstream_bench_x 127.0.0.1(33288) idle": "quizstream_bench_x",
		"postgres: app shop [local] SELECT":                                    "shop",
		"postgres: 15/main: checkpointer ":                                     "",
		"postgres: walwriter":                                                  "",
		"/usr/lib/postgresql/15/bin/postgres\x00-D\x00/var/lib/postgresql":     "",
	} {
		if got := backendOf(cmdline); got != want {
			t.Errorf("backendOf(%q) = %q, want %q", cmdline, got, want)
		}
	}
}

func TestPasses(t *testing.T) {
	res := &load.Result{
		Tasks:  []load.TaskResult{{Name: load.TaskContent, Latency: load.Latency{P99: 10}}, {Name: load.TaskSubmit, Latency: load.Latency{P99: 49.9}}},
		Verify: &load.Verification{OK: true},
	}
	if ok, why := passes(runRecord{Result: res}, 50*time.Millisecond); !ok {
		t.Errorf("p99s within 50ms failed: %s", why)
	}
	res.Tasks[1].Latency.P99 = 50.1
	if ok, why := passes(runRecord{Result: res}, 50*time.Millisecond); ok || !strings.Contains(why, "submit p99 50.1ms") {
		t.Errorf("a p99 of 50.1ms passed, or was not named: %q", why)
	}
	res.Tasks[1].Latency.P99 = 1
	res.Total.Unavailable = 1
	if ok, _ := passes(runRecord{Result: res}, 50*time.Millisecond); ok {
		t.Error("a run with a 503 passed")
	}
}

// The ratios compare like with like, and the Markdown names them.
func TestReport(t *testing.T) {
	run := func(kind string, rps, p99 float64, cpu float64) runRecord {
		res := &load.Result{
			Tasks:  []load.TaskResult{{Name: load.TaskSubmit, RPS: rps, Requests: int64(rps * 10), Latency: load.Latency{P99: p99}}},
			Total:  load.TaskResult{Name: "total", RPS: rps, Requests: int64(rps * 10), Latency: load.Latency{P99: p99}},
			Verify: &load.Verification{OK: true},
		}
		return runRecord{Kind: kind, Result: res, CPU: map[string]float64{tierAPI: cpu}}
	}
	r := report{
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Options: options{Users: 500, P99Limit: 50 * time.Millisecond},
		Designs: []designResult{
			{Name: "quizstream", Runs: []runRecord{run(runMix, 3000, 20, 3), run(runPost, 2000, 30, 2)}, MaxRate: 1500},
			{Name: "baseline", Runs: []runRecord{run(runMix, 1500, 80, 6), run(runPost, 1000, 60, 2)}, MaxRate: 500},
		},
	}
	r.compute(r.Options)
	want := map[string]float64{
		"mix, 500 students: throughput":                       2,
		"mix, 500 students: attempt POST p99":                 4,
		"mix, 500 students: CPU per request, all tiers":       4,
		"POST only, 500 students: throughput":                 2,
		"open model: highest rate with every p99 <= 50ms":     3,
		"POST only, 500 students: CPU per request, all tiers": 2,
	}
	got := map[string]float64{}
	for _, x := range r.Ratios {
		got[x.What] = x.Factor
	}
	for what, f := range want {
		if got[what] != f {
			t.Errorf("%s: factor %g, want %g", what, got[what], f)
		}
	}
	var b strings.Builder
	if err := r.writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"# quizstream benchmark, 2026-01-02", "| mix, 500 students: throughput | 3000.0 req/s | 1500.0 req/s | **2.00x** |", "**1500 tasks/s**"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("the Markdown lacks %q", s)
		}
	}
}

// A backend that exits between the samples must not make the database's
// CPU time negative, and one that starts counts from zero.
func TestCPUBetween(t *testing.T) {
	before := sample{tiers: map[string]float64{tierAPI: 1, tierPostgres: 10, tierMachine: 100}, backends: map[int]float64{1: 5, 2: 3}}
	after := sample{tiers: map[string]float64{tierAPI: 3, tierPostgres: 13, tierMachine: 110}, backends: map[int]float64{2: 4, 3: 1}}
	got := cpuBetween(before, after)
	if got[tierAPI] != 2 || got[tierPostgres] != 3 || got[tierPostgresDB] != 2 || got[tierOther] != 5 {
		t.Errorf("cpuBetween: %v; want api 2, postgres 3, postgres-db 2, other 5", got)
	}
}

func TestDiskBetween(t *testing.T) {
	got := diskBetween(diskStat{device: "vda", writes: 100, flushes: 10, busyMs: 500},
		diskStat{device: "vda", writes: 300, flushes: 50, busyMs: 1500}, 2*time.Second)
	want := diskActivity{Device: "vda", WritesPerS: 100, FlushesPerS: 20, BusyPct: 50}
	if got == nil || *got != want {
		t.Errorf("diskBetween: %+v, want %+v", got, want)
	}
	if diskBetween(diskStat{}, diskStat{}, time.Second) != nil {
		t.Error("diskBetween of an unknown device is not nil")
	}
}

// The JSON holds everything the Markdown shows.
func TestRerender(t *testing.T) {
	r := report{Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Options: options{Users: 500, P99Limit: 50 * time.Millisecond},
		Designs: []designResult{{Name: "quizstream", MaxRate: 1500}, {Name: "baseline", MaxRate: 500}}}
	r.compute(r.Options)
	md, js, err := r.write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(md)
	if err := os.Remove(md); err != nil {
		t.Fatal(err)
	}
	if err := rerender(js); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(md)
	if len(want) == 0 || string(got) != string(want) {
		t.Errorf("rerendered Markdown differs:\n%s\nwant:\n%s", got, want)
	}
}
