package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/bench/load"
)

// outageResult is what the checker-outage phase found.
type outageResult struct {
	Users     int     `json:"users"`
	Rate      float64 `json:"rate"`
	CheckRate float64 `json:"check_rate"`
	Mix       string  `json:"mix"`
	FakePolls int     `json:"fake_polls"`
	// Windows are A, B and C in order.
	Windows []outageWindow `json:"windows"`
	// Ratios are B's and C's latencies over A's, per task.
	Ratios []outageRatio `json:"ratios"`
	// BreakerOpenedS is how long after the checker went down the breaker
	// was first seen open, BreakerClosedS how long after it came back the
	// breaker was first seen closed; -1 when never.
	BreakerOpenedS float64 `json:"breaker_opened_after_down_s"`
	BreakerClosedS float64 `json:"breaker_closed_after_up_s"`
	// FakeAfter is what the fake received from the end of C until every
	// check was final.
	FakeAfter outageFake  `json:"fake_after_c"`
	Checks    outageCheck `json:"checks"`
	// Load is the whole run as the load tool reports it.
	Load  *load.Result `json:"load,omitempty"`
	Error string       `json:"error,omitempty"`
}

// outageWindow is one window: the load's figures, what the fake Judge0
// received, the checker's calls by outcome, its breaker, every tier's
// CPU.
type outageWindow struct {
	load.WindowResult
	Fake         outageFake         `json:"fake"`
	CheckerCalls map[string]float64 `json:"checker_calls"`
	// BreakerOpen is the share of the window's samples (every 250ms) that
	// saw the breaker open.
	BreakerOpen float64            `json:"breaker_open_share"`
	CPU         map[string]float64 `json:"cpu_s,omitempty"`
	LoadAvg     [2]string          `json:"loadavg"`
}

// outageFake is what the fake Judge0 received in a span.
type outageFake struct {
	Requests    int64 `json:"requests"`
	Refused     int64 `json:"refused"`
	Submissions int64 `json:"submissions"`
}

// outageRatio is one task's latency in a window over window A's.
type outageRatio struct {
	Task   string  `json:"task"`
	Window string  `json:"window"`
	P50    float64 `json:"p50_ratio"`
	P99    float64 `json:"p99_ratio"`
}

// outageCheck is the checks' fate.
type outageCheck struct {
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
	// Stored counts the stored checks, ByStatus them by status.
	Stored   int            `json:"stored"`
	ByStatus map[string]int `json:"by_status"`
	// Among the accepted checks: final once with one CodeCheckCompleted
	// in the stream (Once), with none, with more than one, not final, not
	// stored.
	Once      int `json:"final_once"`
	Never     int `json:"never_completed"`
	Twice     int `json:"completed_more_than_once"`
	NotFinal  int `json:"not_final"`
	NotStored int `json:"not_stored"`
	// Extra counts stored checks that are none of the 202s: only checks
	// whose answer was lost (Sent - Accepted) may explain them.
	Extra       int  `json:"extra"`
	ExactlyOnce bool `json:"exactly_once"`
	// Waiting counts the checks submitted before the checker came back
	// and unfinished then; BacklogS is how long after its return the last
	// of them finished (-1: one never did), AllFinalS the last check of
	// all.
	Waiting       int      `json:"waiting_at_return"`
	BacklogS      float64  `json:"backlog_done_after_return_s"`
	AllFinalS     float64  `json:"all_final_after_return_s"`
	WaitedSeconds float64  `json:"waited_after_load_s"`
	Problems      []string `json:"problems,omitempty"`
}

func (c outageCheck) String() string {
	return fmt.Sprintf("%d checks accepted, %d final once, %d waiting when the checker came back, done %.1fs after it (all final after %.1fs); exactly once: %v",
		c.Accepted, c.Once, c.Waiting, c.BacklogS, c.AllFinalS, c.ExactlyOnce)
}

// outageTasks are the tasks whose ratios the phase reports: attempt POSTs
// and the reads a student makes of their own data.
var outageTasks = []string{load.TaskSubmit, load.TaskProgress, load.TaskAttempts}

// fill computes the windows from the marks taken as each began (marks[3]
// as C ended), end (every check final), and the breaker's samples.
func (r *outageResult) fill(lr load.Result, marks []outageMark, end outageMark, breaker []breakerSample) {
	for i, w := range lr.Windows {
		from, to := marks[i], marks[i+1]
		ow := outageWindow{WindowResult: w, Fake: fakeBetween(from, to), CheckerCalls: callsBetween(from.calls, to.calls),
			BreakerOpen: openShare(breaker, from.at, to.at), LoadAvg: [2]string{from.load, to.load}}
		if !from.cpu.at.IsZero() && !to.cpu.at.IsZero() {
			ow.CPU = cpuBetween(from.cpu, to.cpu)
		}
		r.Windows = append(r.Windows, ow)
	}
	r.FakeAfter = fakeBetween(marks[len(marks)-1], end)
	r.Ratios = outageRatios(lr.Windows)
	r.BreakerOpenedS, r.BreakerClosedS = breakerTimes(breaker, marks[1].at, marks[2].at)
}

func fakeBetween(from, to outageMark) outageFake {
	return outageFake{Requests: to.fake.Requests - from.fake.Requests, Refused: to.fake.Refused - from.fake.Refused,
		Submissions: to.fake.Submissions - from.fake.Submissions}
}

// callsBetween returns quizstream_checker_calls_total's increase by
// outcome.
func callsBetween(from, to map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for series, v := range to {
		outcome := series
		if _, l, ok := strings.Cut(series, `outcome="`); ok {
			outcome, _, _ = strings.Cut(l, `"`)
		}
		if d := v - from[series]; d > 0 {
			out[outcome] += d
		}
	}
	return out
}

// openShare returns the share of the samples in [from, to) that saw the
// breaker open.
func openShare(samples []breakerSample, from, to time.Time) float64 {
	var n, open int
	for _, s := range samples {
		if !s.at.Before(from) && s.at.Before(to) {
			n++
			if s.state == breakerOpen {
				open++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(open) / float64(n)
}

// breakerTimes returns how long after down the breaker was first seen
// open, and how long after up it was first seen closed (0 at once when
// it was not open at up); -1 for never.
func breakerTimes(samples []breakerSample, down, up time.Time) (opened, closed float64) {
	opened, closed = -1, -1
	for _, s := range samples {
		if opened < 0 && !s.at.Before(down) && s.state == breakerOpen {
			opened = s.at.Sub(down).Seconds()
		}
		if closed < 0 && !s.at.Before(up) && s.state == 0 {
			closed = s.at.Sub(up).Seconds()
		}
	}
	return opened, closed
}

// outageRatios returns each outage task's p50 and p99 in every window
// after the first over the first's.
func outageRatios(ws []load.WindowResult) []outageRatio {
	if len(ws) == 0 {
		return nil
	}
	var out []outageRatio
	for _, task := range outageTasks {
		a, ok := ws[0].Task(task)
		if !ok || a.Latency.P50 == 0 || a.Latency.P99 == 0 {
			continue
		}
		for _, w := range ws[1:] {
			t, ok := w.Task(task)
			if !ok {
				continue
			}
			out = append(out, outageRatio{Task: task, Window: w.Name, P50: t.Latency.P50 / a.Latency.P50, P99: t.Latency.P99 / a.Latency.P99})
		}
	}
	return out
}

// summarizeChecks holds what was stored against what was accepted: every
// accepted check stored, final, with exactly one CodeCheckCompleted in
// the stream; and times the backlog from up, when the checker came back.
func summarizeChecks(sent []load.SentCheck, rows []checkRow, completed map[uuid.UUID]int, up time.Time, waited float64) outageCheck {
	c := outageCheck{Sent: len(sent), Stored: len(rows), ByStatus: map[string]int{}, WaitedSeconds: waited}
	stored := map[uuid.UUID]checkRow{}
	var last, lastWaiting time.Time
	unfinished := false // a check that waited for the checker never finished
	for _, r := range rows {
		stored[r.id] = r
		c.ByStatus[r.status]++
		if r.submitted.Before(up) && (r.finished == nil || !r.finished.Before(up)) {
			c.Waiting++
			unfinished = unfinished || r.finished == nil
		}
		if r.finished == nil {
			continue
		}
		if r.finished.After(last) {
			last = *r.finished
		}
		if r.submitted.Before(up) && r.finished.After(lastWaiting) {
			lastWaiting = *r.finished
		}
	}
	problem := func(format string, args ...any) {
		if len(c.Problems) < 20 {
			c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
		}
	}
	accepted := map[uuid.UUID]bool{}
	for _, s := range sent {
		id, err := uuid.Parse(s.CheckID)
		if !s.Accepted || err != nil || accepted[id] {
			continue
		}
		accepted[id] = true
		c.Accepted++
		r, ok := stored[id]
		switch {
		case !ok:
			c.NotStored++
			problem("check %s (key %s): accepted, not stored", id, s.Key)
			continue
		case r.status != "passed" && r.status != "failed" && r.status != "error":
			c.NotFinal++
			problem("check %s: %s, not final", id, r.status)
		}
		switch n := completed[id]; {
		case n == 0:
			c.Never++
			problem("check %s: no CodeCheckCompleted in the stream", id)
		case n > 1:
			c.Twice++
			problem("check %s: %d CodeCheckCompleted in the stream", id, n)
		case r.status == "passed" || r.status == "failed" || r.status == "error":
			c.Once++
		}
	}
	for id := range stored {
		if !accepted[id] {
			c.Extra++
		}
	}
	if !last.IsZero() {
		c.AllFinalS = max(last.Sub(up).Seconds(), 0)
	}
	switch {
	case unfinished:
		c.BacklogS = -1
	case c.Waiting > 0:
		c.BacklogS = lastWaiting.Sub(up).Seconds()
	}
	c.ExactlyOnce = c.Once == c.Accepted && c.Extra <= c.Sent-c.Accepted
	return c
}

// writeOutage renders the checker-outage phase.
func writeOutage(b *strings.Builder, r *outageResult, cpus int) {
	if r == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Checker outage\n\n")
	p("Issue 17's fault: the code checker down under the attempt load. A database and a nats-server (JetStream, `sync_interval: always`) of its own; `quizstream api`, `quizstream worker` and `quizstream checker` processes with their defaults (the checker's: 8 checks at once, 20 requests/s, breaker open after 5 failures in a row for 30 s, a request it cannot take handed back for 5 s); the checker's CHECKER_URL is a Judge0-compatible fake in stackbench's process (checker/judge0test: every submission In Queue at its first poll, final %d poll(s) later, each program passing its exercise's test cases). ", r.FakePolls)
	p("One open-model run of %d students at a fixed rate: %.0f tasks/s of %s and %.1f code checks/s (each of an exercise and language of the seeded content, with an Idempotency-Key); every try timed from its due time. Its measured time is three windows: **A** with the checker up, **B** with the fake down (every connection closed unanswered), **C** with it back. ", r.Users, r.Rate, r.Mix, r.CheckRate)
	p("After the load, every accepted check must be stored, final, with exactly one CodeCheckCompleted in the stream. The phase states figures; it holds them against no bound (issue 17 asks B's latencies within 1.2x of A's).\n\n")
	if r.Error != "" {
		p("Error: %s\n\n", r.Error)
	}
	if len(r.Windows) == 0 {
		return
	}
	p("| window | length | answered/s | attempt POST p50 / p99 | progress p50 / p99 | attempts list p50 / p99 | check POST p50 / p99 | failed tries, 503, 429 | fake Judge0: requests (refused) | checker calls by outcome | breaker open |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, w := range r.Windows {
		p("| %s | %.0f s | %.0f |", w.Name, w.Window, w.Total.RPS)
		for _, task := range append(append([]string(nil), outageTasks...), load.TaskCheck) {
			t, _ := w.Task(task)
			p(" %.2f / %.2f ms |", t.Latency.P50, t.Latency.P99)
		}
		p(" %d, %d, %d | %d (%d) | %s | %.0f%% |\n", w.Total.Errors, w.Total.Unavailable, w.Total.RateLimited, w.Fake.Requests, w.Fake.Refused, outcomes(w.CheckerCalls), w.BreakerOpen*100)
	}
	p("\n| task | window | p50 / A's | p99 / A's |\n|---|---|---:|---:|\n")
	for _, x := range r.Ratios {
		p("| %s | %s | **%.2f** | **%.2f** |\n", x.Task, x.Window, x.P50, x.P99)
	}
	p("\nBreaker (quizstream_checker_breaker_state, read every 250 ms): first seen open %s after the checker went down, first seen closed %s after it came back. After C, until every check was final, the fake received %d requests.\n\n",
		orNever(r.BreakerOpenedS), orNever(r.BreakerClosedS), r.FakeAfter.Requests)
	c := r.Checks
	verdict := "yes"
	if !c.ExactlyOnce {
		verdict = "**NO**"
	}
	p("Checks: %d sent, %d accepted (202), %d stored (%s); %d waiting when the checker came back, the last of them final **%s** after its return, every check final %.1f s after it (the wait after the load: %.1f s). Every accepted check final with exactly one CodeCheckCompleted: %s (%d once, %d never completed, %d completed more than once, %d not final, %d not stored, %d stored checks none of the 202s).\n\n",
		c.Sent, c.Accepted, c.Stored, statuses(c.ByStatus), c.Waiting, orNever(c.BacklogS), c.AllFinalS, c.WaitedSeconds, verdict, c.Once, c.Never, c.Twice, c.NotFinal, c.NotStored, c.Extra)
	if len(c.Problems) > 0 {
		p("Problems: %s\n\n", strings.Join(c.Problems, "; "))
	}
	if res := r.Load; res != nil && res.Verify != nil {
		p("The load tool's check of the attempts: %s.\n\n", checkWord(res))
	}
	var rows, shares []string
	for _, w := range r.Windows {
		c := w.CPU
		if c == nil {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s -> %s |", w.Name, c[tierAPI], c[tierWorker], c[tierChecker], c[tierNATS],
			c[tierPostgres], c[tierPostgresDB], c[tierLoad], c[tierOther], c[tierMachine], firstOf(w.LoadAvg[0]), firstOf(w.LoadAvg[1])))
		if cpus > 0 && w.Window > 0 {
			shares = append(shares, fmt.Sprintf("%.0f%% in %s", c[tierOther]/(w.Window*float64(cpus))*100, w.Name[:1]))
		}
	}
	if len(rows) == 0 {
		return
	}
	p("| window | api | worker | checker | nats-server | postgres (all) | postgres (bench db backends) | stackbench (load and fake) | other programs | machine: programs | load avg |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n%s\n\n", strings.Join(rows, "\n"))
	p("CPU seconds over each window. Programs outside the benchmark took %s of the %d CPUs: a window that shared the machine more ran with less of it, and its ratio to A says as much about the machine as about the checker.\n\n", strings.Join(shares, ", "), cpus)
}

func outcomes(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func statuses(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func orNever(s float64) string {
	if s < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f s", s)
}
