package main

import (
	"fmt"
	"strings"

	"github.com/quizstream/quizstream/bench/load"
)

// Exam-day targets (issue 18), on this machine with the load generator on it.
const (
	targetStartP99    = 100.0 // ms
	targetSaveP99     = 50.0
	targetSubmitP99   = 100.0
	targetLatenessP99 = 2000.0
)

// stackCPU is the stack's CPU seconds in c: api, worker, nats-server and
// the design's database backends.
func stackCPU(c map[string]float64) float64 {
	return c[tierAPI] + c[tierWorker] + c[tierNATS] + c[tierPostgresDB]
}

// examPhaseCPUPerRequest is the stack's CPU milliseconds per answered
// request of an exam run once the logins were over: start, save and
// submit.
func (rec *runRecord) examPhaseCPUPerRequest() float64 {
	if rec == nil || rec.Result == nil || rec.CPU == nil || rec.LoginCPU == nil {
		return 0
	}
	login, _ := rec.Result.Task(load.TaskLogin)
	n := rec.Result.Total.Requests - login.Requests
	if n <= 0 {
		return 0
	}
	return (stackCPU(rec.CPU) - stackCPU(rec.LoginCPU)) * 1000 / float64(n)
}

// examRuns returns the exam runs of every design.
func (r *report) examRuns() []runRecord {
	var out []runRecord
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			if rec.Kind == runExamMany || rec.Kind == runExamOne {
				out = append(out, rec)
			}
		}
	}
	return out
}

// writeExams renders the exam workload's runs.
func writeExams(b *strings.Builder, r *report) {
	runs := r.examRuns()
	if len(runs) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	o := r.Options
	p("## Exam day: %d students, from many addresses and from one\n\n", o.ExamUsers)
	p("The demo's sprint with a time limit of %s and a grace of %s, on a `quizstream api` restarted for it with the default limits (a hall behind one address must get in through them; 429 and 503 answers are counted). Every student signs up first (not part of the exam), then logs in, the logins spread over %s; once all are in, each starts the sprint within 5 s, autosaves an answer every 5-10 s with a rising seq (5%% of saves re-sent with the same seq, 5%% sent after the next, higher-seq one, 10%% clearing), and 80%% submit within the last %s before their deadline; the rest are left to the deadline, and each of their attempts is read every 250 ms from deadline + grace until it reads as recorded (finalization lateness; the timer fires EXAM_SETTLE, 2 s, after deadline + grace). Afterwards every session is checked: finalized as its student left it, its answers exactly the highest-seq saves answered 202, its attempt graded from them with the demo's answer key and listed once. Many addresses: each student connects from a loopback address of its own (127.10.x.y); one address: all from the default one.\n\n",
		o.ExamLimit, o.ExamGrace, o.ExamLoginSpread, o.ExamSubmitWindow)
	for _, rec := range runs {
		p("**%s %s**", rec.Design, rec.Kind)
		if rec.Result == nil {
			p(": no result. %s\n\n", rec.Error)
			continue
		}
		p(":\n\n")
		taskTable(b, *rec.Result)
		p("\n")
	}
	p("| run | logins/s | api CPU ms per login (argon2id) | sessions | submitted | left to the deadline | saves (re-sent, out of order) | lateness p50 | lateness p99 | lateness max | 429 | 503 | errors | check | targets |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, rec := range runs {
		res := rec.Result
		if res == nil || res.Exam == nil {
			p("| %s | error: %s |\n", rec.Kind, rec.Error)
			continue
		}
		x := res.Exam
		login, _ := res.Task(load.TaskLogin)
		perLogin := "-"
		if rec.LoginCPU != nil && login.Requests > 0 {
			perLogin = fmt.Sprintf("%.1f", rec.LoginCPU[tierAPI]*1000/float64(login.Requests))
		}
		check := "skipped"
		if v := x.Verify; v != nil {
			check = "ok"
			if !v.OK {
				check = fmt.Sprintf("FAILED (%d not recorded, %d state, %d answers, %d scores, %d missing, %d duplicated)",
					v.NotRecorded, v.StateMismatched, v.AnswersMismatched, v.ScoreMismatched, v.Missing, v.Duplicated)
			}
		}
		p("| %s | %.1f | %s | %d | %d | %d | %d (%d, %d) | %.0f ms | %.0f ms | %.0f ms | %d | %d | %d | %s | %s |\n", rec.Kind, x.LoginRate, perLogin,
			x.Sessions, x.Submitted, x.Expired, x.Saves, x.Resaves, x.OutOfOrder, x.Lateness.P50, x.Lateness.P99, x.Lateness.Max,
			res.Total.RateLimited, res.Total.Unavailable, res.Total.Errors, check, examVerdict(res))
	}
	p("\nTargets: 0 answers of 429 or 503, start p99 <= %.0f ms, save p99 <= %.0f ms, submit p99 <= %.0f ms, finalization lateness p99 <= %.0f s, every attempt exact. Lateness is an upper bound within the 250 ms between reads.\n\n",
		targetStartP99, targetSaveP99, targetSubmitP99, targetLatenessP99/1000)
	for _, rec := range runs {
		if res := rec.Result; res != nil && res.Exam != nil && res.Exam.Verify != nil && len(res.Exam.Verify.Problems) > 0 {
			p("Problems found by the check of %s: %s\n\n", rec.Kind, strings.Join(res.Exam.Verify.Problems, "; "))
		}
	}
}

// examVerdict lists the targets an exam run missed, or "met".
func examVerdict(res *load.Result) string {
	var miss []string
	if n := res.Total.RateLimited + res.Total.Unavailable; n > 0 {
		miss = append(miss, fmt.Sprintf("%d 429/503", n))
	}
	for _, t := range []struct {
		task  string
		limit float64
	}{{load.TaskStart, targetStartP99}, {load.TaskSave, targetSaveP99}, {load.TaskExamSubmit, targetSubmitP99}} {
		if tr, _ := res.Task(t.task); tr.Latency.P99 > t.limit {
			miss = append(miss, fmt.Sprintf("%s p99 %.0f ms", t.task, tr.Latency.P99))
		}
	}
	x := res.Exam
	if x.Lateness.P99 > targetLatenessP99 || x.LatenessTimedOut > 0 {
		miss = append(miss, fmt.Sprintf("lateness p99 %.1f s", x.Lateness.P99/1000))
	}
	if x.Verify == nil || !x.Verify.OK {
		miss = append(miss, "check")
	}
	if len(miss) == 0 {
		return "met"
	}
	return "missed: " + strings.Join(miss, ", ")
}

// writeFloor renders each run's CPU per request as a multiple of the
// floor's.
func writeFloor(b *strings.Builder, r *report) {
	f := r.Floor
	if f == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## CPU per request as a multiple of the floor\n\n")
	floor := f.cpuPerRequest()
	if f.Result == nil || floor == 0 {
		p("The floor did not run: %s\n\n", f.Error)
		return
	}
	p("The floor is bench/cmd/floor, an Echo server answering every GET with one precomputed JSON body of about 600 bytes, driven by the same load tool in the same run (%d students, closed loop, right after the mix): %.0f requests/s at %.3f ms of its CPU per request (p50 %.2f ms, p99 %.2f ms). A stack's figure is api + worker + nats-server + its database's backends per answered request; the multiple is the goal that does not depend on how many cores the load generator shares.\n\n",
		f.Users, f.Result.Total.RPS, floor, f.Result.Total.Latency.P50, f.Result.Total.Latency.P99)
	p("The exam's students pause 5-10 s between saves, so its requests are few for its length and its figure carries the stack's cost while idle too (timers, the worker's fetches, the database's background); the logins' argon2id hashes are most of the rest.\n\n")
	p("| design | run | stack CPU ms / request | x floor |\n|---|---|---:|---:|\n")
	for _, d := range r.Designs {
		for _, rec := range d.Runs {
			if rec.Kind == runOpen || rec.CPU == nil {
				continue
			}
			c := rec.cpuPerRequest()
			p("| %s | %s | %.3f | **%.1fx** |\n", d.Name, rec.Kind, c, c/floor)
			if e := rec.examPhaseCPUPerRequest(); e > 0 {
				p("| %s | %s, without the logins | %.3f | **%.1fx** |\n", d.Name, rec.Kind, e, e/floor)
			}
		}
	}
	p("\n")
}
