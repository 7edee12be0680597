package main

import (
	"strings"
	"testing"

	"github.com/quizstream/quizstream/bench/load"
)

// The floor's multiple is each run's stack CPU per request over the
// floor's, the exam's with and without its logins; an exam run is held to
// the targets.
func TestFloorAndExamReport(t *testing.T) {
	floor := runRecord{Kind: runFloor, Users: 50, CPU: map[string]float64{tierAPI: 1},
		Result: &load.Result{Total: load.TaskResult{Name: "total", Requests: 20000}}} // 0.05 ms a request
	mix := runRecord{Kind: runMix, CPU: map[string]float64{tierAPI: 2, tierNATS: 1}, // 0.1 ms a request
		Result: &load.Result{Total: load.TaskResult{Name: "total", Requests: 30000}}}
	exam := func(kind string, saveP99, lateness float64, unavailable int64, ok bool) runRecord {
		task := func(name string, n int64, p99 float64) load.TaskResult {
			return load.TaskResult{Name: name, Requests: n, Latency: load.Latency{P99: p99}}
		}
		return runRecord{Kind: kind, Design: "quizstream",
			CPU: map[string]float64{tierAPI: 8, tierWorker: 2}, LoginCPU: map[string]float64{tierAPI: 4},
			Result: &load.Result{
				Tasks: []load.TaskResult{task(load.TaskLogin, 100, 80), task(load.TaskStart, 100, 90), task(load.TaskSave, 350, saveP99), task(load.TaskExamSubmit, 50, 99)},
				Total: load.TaskResult{Name: "total", Requests: 600, Unavailable: unavailable},
				Exam: &load.ExamResult{Sessions: 100, Lateness: load.Latency{Count: 50, P99: lateness},
					Verify: &load.ExamVerification{OK: ok}},
			}}
	}
	many, one := exam(runExamMany, 60, 2500, 0, true), exam(runExamOne, 40, 1500, 3, false)
	if got, want := examVerdict(many.Result), "missed: save p99 60 ms, lateness p99 2.5 s"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
	if got, want := examVerdict(one.Result), "missed: 3 429/503, check"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
	if got := examVerdict(exam(runExamOne, 40, 1500, 0, true).Result); got != "met" {
		t.Errorf("verdict %q, want met", got)
	}
	r := report{Options: options{ExamUsers: 100}, Floor: &floor,
		Designs: []designResult{{Name: "quizstream", Runs: []runRecord{mix, many, one}}}}
	var b strings.Builder
	writeExams(&b, &r)
	writeFloor(&b, &r)
	for _, s := range []string{
		"| quizstream | mix | 0.100 | **2.0x** |",
		// 10 s of CPU over 600 requests; without the logins 6 s over 500.
		"| quizstream | exam, many addresses | 16.667 | **333.3x** |",
		"| quizstream | exam, many addresses, without the logins | 12.000 | **240.0x** |",
		"| exam, many addresses | 0.0 | 40.0 |", // api CPU ms per login: 4 s over 100
	} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("the Markdown lacks %q:\n%s", s, b.String())
		}
	}
}
