package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/store"
)

func TestOutageWeights(t *testing.T) {
	w, rate := outageWeights(load.Weights{Submit: 50, Progress: 25, Attempts: 25}, 400, 2)
	if want := (load.Weights{Submit: 20000, Progress: 10000, Attempts: 10000, Check: 200}); w != want || rate != 402 {
		t.Fatalf("weights %+v at %g/s, want %+v at 402/s", w, rate, want)
	}
	// Each task's share of the total rate is its own rate.
	total := float64(w.Submit + w.Progress + w.Attempts + w.Check)
	if got := float64(w.Check) / total * rate; got < 1.999 || got > 2.001 {
		t.Errorf("checks at %g/s, want 2", got)
	}
	if got := float64(w.Submit) / total * rate; got < 199.9 || got > 200.1 {
		t.Errorf("attempt POSTs at %g/s, want 200", got)
	}
}

func win(name string, submitP50, submitP99, progressP50, progressP99 float64) load.WindowResult {
	return load.WindowResult{Name: name, Window: 10, Tasks: []load.TaskResult{
		{Name: load.TaskSubmit, Latency: load.Latency{P50: submitP50, P99: submitP99}},
		{Name: load.TaskProgress, Latency: load.Latency{P50: progressP50, P99: progressP99}},
	}}
}

func TestOutageRatios(t *testing.T) {
	got := outageRatios([]load.WindowResult{win("A", 2, 10, 1, 4), win("B", 3, 12, 1, 8), win("C", 2, 20, 0.5, 4)})
	want := []outageRatio{
		{Task: load.TaskSubmit, Window: "B", P50: 1.5, P99: 1.2}, {Task: load.TaskSubmit, Window: "C", P50: 1, P99: 2},
		{Task: load.TaskProgress, Window: "B", P50: 1, P99: 2}, {Task: load.TaskProgress, Window: "C", P50: 0.5, P99: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("%+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ratio %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBreakerFigures(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	samples := []breakerSample{{at(0), 0}, {at(1), 0}, {at(2), 0}, {at(2.5), 2}, {at(3), 2}, {at(4), 2}, {at(5), 2}, {at(5.75), 1}, {at(6), 0}}
	opened, closed := breakerTimes(samples, at(2), at(5))
	if opened != 0.5 || closed != 1 {
		t.Errorf("opened %gs after down, closed %gs after up; want 0.5 and 1", opened, closed)
	}
	if s := openShare(samples, at(2), at(5)); s != 0.75 {
		t.Errorf("open share in B %g, want 0.75 (3 of 4 samples)", s)
	}
	if o, c := breakerTimes(samples[:3], at(1), at(2)); o != -1 || c != 0 {
		t.Errorf("a breaker never open: %g, %g; want -1 (never) and 0", o, c)
	}
	calls := callsBetween(map[string]float64{`quizstream_checker_calls_total{outcome="ok"}`: 10},
		map[string]float64{`quizstream_checker_calls_total{outcome="ok"}`: 14, `quizstream_checker_calls_total{outcome="network"}`: 5})
	if len(calls) != 2 || calls["ok"] != 4 || calls["network"] != 5 {
		t.Errorf("calls by outcome %v, want ok 4, network 5", calls)
	}
}

func TestSummarizeChecks(t *testing.T) {
	up := time.Unix(1000, 0)
	at := func(s float64) *time.Time {
		x := up.Add(time.Duration(s * float64(time.Second)))
		return &x
	}
	id := func(i int) uuid.UUID { return uuid.NewSHA1(uuid.Nil, []byte{byte(i)}) }
	sent := []load.SentCheck{
		{Key: "a", Accepted: true, CheckID: id(1).String()}, // done before the checker went down
		{Key: "b", Accepted: true, CheckID: id(2).String()}, // waited: done 4s after up
		{Key: "c", Accepted: true, CheckID: id(3).String()}, // waited: done 7s after up
		{Key: "d", Accepted: true, CheckID: id(4).String()}, // sent after up, done 9s after
		{Key: "e"}, // answer lost, stored anyway
	}
	rows := []checkRow{
		{id(1), "passed", *at(-40), at(-39)}, {id(2), "passed", *at(-20), at(4)}, {id(3), "failed", *at(-1), at(7)},
		{id(4), "passed", *at(2), at(9)}, {id(5), "error", *at(3), at(5)},
	}
	completed := map[uuid.UUID]int{id(1): 1, id(2): 1, id(3): 1, id(4): 1, id(5): 1}
	c := summarizeChecks(sent, rows, completed, up, 3)
	if c.Sent != 5 || c.Accepted != 4 || c.Stored != 5 || c.Once != 4 || c.Extra != 1 || !c.ExactlyOnce {
		t.Errorf("%#v: want 5 sent, 4 accepted, 5 stored, 4 once, 1 extra, exactly once", c)
	}
	if c.Waiting != 2 || c.BacklogS != 7 || c.AllFinalS != 9 || c.ByStatus["passed"] != 3 {
		t.Errorf("%#v: want 2 waiting, backlog done after 7s, all after 9s, 3 passed", c)
	}
	// A check completed twice, one never, and one still queued.
	completed[id(2)] = 2
	delete(completed, id(4))
	delete(completed, id(3))
	rows[2].status, rows[2].finished = "queued", nil
	c = summarizeChecks(sent, rows, completed, up, 3)
	if c.ExactlyOnce || c.Twice != 1 || c.Never != 2 || c.NotFinal != 1 || c.BacklogS != -1 || len(c.Problems) != 4 {
		t.Errorf("%#v: want not exactly once: 1 twice, 2 never completed (one not final), backlog never done, 4 problems", c)
	}
}

// TestFakeSolutionPasses: each generated program passes its exercise,
// hidden test cases too, through the checker's client and the fake.
func TestFakeSolutionPasses(t *testing.T) {
	fake := judge0test.Start(t, judge0test.Config{Polls: outageFakePolls})
	c, err := checker.New(checker.Config{URL: fake.URL, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, e := range store.DemoExercises(uuid.New()) {
		for _, lang := range e.Languages {
			src := fakeSolution(lang, e.Tests)
			if lang == "python" && !strings.HasPrefix(src, "# judge0test: ") || lang == "go" && !strings.HasPrefix(src, "// judge0test: ") {
				t.Errorf("%s in %s: directives not in the language's comments:\n%s", e.Title, lang, src)
			}
			req := checker.Request{Language: lang, Source: src}
			for _, tc := range e.Tests {
				req.Tests = append(req.Tests, checker.TestCase{Stdin: tc.Stdin, Expected: tc.Stdout, Hidden: tc.Hidden})
			}
			res, err := c.Check(t.Context(), req)
			if err != nil || res.Verdict != checker.VerdictPassed {
				t.Errorf("%s in %s: %+v, %v; want passed", e.Title, lang, res, err)
			}
		}
	}
}

func TestOutageReport(t *testing.T) {
	marks := make([]outageMark, 4)
	for i := range marks {
		marks[i].at = time.Unix(int64(100+10*i), 0)
		marks[i].fake = judge0test.Stats{Requests: int64(10 * i)}
	}
	marks[2].fake.Requests = 13 // 3 calls reached it while down
	lr := load.Result{Windows: []load.WindowResult{win(outageWindows[0], 2, 10, 1, 4), win(outageWindows[1], 3, 12, 1, 8), win(outageWindows[2], 2, 20, 1, 4)}}
	r := &outageResult{Users: 100, Rate: 400, CheckRate: 2, Mix: outageDefaultMix.String(), FakePolls: 1}
	r.fill(lr, marks, outageMark{at: time.Unix(140, 0), fake: judge0test.Stats{Requests: 50}}, []breakerSample{{time.Unix(112, 0), 2}, {time.Unix(121, 0), 0}})
	r.Checks = outageCheck{Sent: 60, Accepted: 60, Once: 60, ExactlyOnce: true, Waiting: 20, BacklogS: 6.5}
	if r.Windows[1].Fake.Requests != 3 || r.FakeAfter.Requests != 20 || r.BreakerOpenedS != 2 || r.BreakerClosedS != 1 {
		t.Fatalf("B: %d fake requests, %d after; breaker opened %gs, closed %gs; want 3, 20, 2, 1", r.Windows[1].Fake.Requests, r.FakeAfter.Requests, r.BreakerOpenedS, r.BreakerClosedS)
	}
	rep := report{Options: options{Only: onlyOutage}, Outage: r}
	var b strings.Builder
	if err := rep.writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, s := range []string{"## Checker outage", "| submit | B: checker down | **1.50** | **1.20** |", "| B: checker down | 10 s |", "| 3 (0) |", "final **6.5 s** after its return", "exactly one CodeCheckCompleted: yes"} {
		if !strings.Contains(md, s) {
			t.Errorf("the Markdown lacks %q:\n%s", s, md)
		}
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if o := back.Outage; o == nil || len(o.Windows) != 3 || o.Windows[1].Name != outageWindows[1] || o.Ratios[0].P50 != 1.5 {
		t.Errorf("the JSON lost the phase: %+v", back.Outage)
	}
}

// Settings the checker-outage phase refuses before anything starts.
func TestOutageFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-only", "checker"},
		{"-outage-mix", "submit=1,check=1"},
		{"-outage-mix", "nope=1"},
	} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
