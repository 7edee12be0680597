// Command quizload drives a running quizstream API the way exam day does:
// virtual students sign up, then run a weighted mix of content reads, their
// own user, progress and attempts, and attempt POSTs (each with an
// Idempotency-Key, some re-sent), as a closed loop of students or at a
// constant arrival rate (-rate). It prints a progress line on stderr once a
// second, then a table of latencies per task (HDR histograms), and checks
// that every attempt answered 202 is recorded exactly once and that
// progress agrees. It sends traffic only to -url. The logic is package
// bench/load; this is flags and printing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"golang.org/x/term"

	"github.com/quizstream/quizstream/bench/load"
)

func main() {
	load.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "quizload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c load.Config
	var mix, jsonPath string
	var quiet bool
	fs := flag.NewFlagSet("quizload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the API")
	fs.IntVar(&c.Users, "users", 50, "virtual students")
	fs.StringVar(&mix, "mix", load.DefaultWeights.String(), `task weights, "task=weight,..." (content, user, progress, attempts, submit)`)
	fs.DurationVar(&c.ThinkTime, "think", 0, "closed model: pause after each task (uniform in [0.5x, 1.5x])")
	fs.DurationVar(&c.Ramp, "ramp", 0, "closed model: spread the students' first tasks over this, after every signup")
	fs.DurationVar(&c.WarmUp, "warmup", 5*time.Second, "load not measured, once every student signed up")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured load")
	fs.Float64Var(&c.Rate, "rate", 0, "open model: tasks per second at a constant arrival rate (0: closed model)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 2000, "open model: tasks in flight at most (a later arrival waits, and its wait counts)")
	fs.Float64Var(&c.ConditionalShare, "conditional", 0.5, "share of content reads sent with If-None-Match (negative: none)")
	fs.Float64Var(&c.ResendShare, "resend", 0.05, "share of 202s re-sent with the same Idempotency-Key (negative: none)")
	fs.IntVar(&c.MaxTries, "max-tries", 10, "tries of a request that gets 503, 429 or a transport error")
	fs.DurationVar(&c.RequestTimeout, "timeout", 30*time.Second, "one try's timeout")
	fs.Float64Var(&c.LagRate, "lag-rate", 10, "202s per second followed until recorded, for the lag (negative: none)")
	fs.DurationVar(&c.LagPoll, "lag-poll", 20*time.Millisecond, "how often a followed attempt is read")
	fs.IntVar(&c.SignupConcurrency, "signup-concurrency", 8, "signups in flight at most")
	fs.BoolVar(&c.SingleAddr, "single-addr", false, "connect every student from the default address (by default, on loopback each student has its own 127.10.x.y)")
	fs.BoolVar(&c.SkipVerify, "no-verify", false, "skip the check that every 202 is recorded once and progress agrees")
	fs.DurationVar(&c.VerifyTimeout, "verify-timeout", 2*time.Minute, "how long to wait for every 202 to read as recorded")
	fs.StringVar(&jsonPath, "json", "", "also write the result as JSON to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress line")
	exam := fs.Bool("exam", false, "run the exam workload instead of the mix: students log in, start a timed quiz, autosave and submit or leave it to the deadline (the -exam-* flags; -mix, -think, -ramp, -warmup, -duration and -rate do not apply)")
	var x load.ExamConfig
	fs.StringVar(&x.QuizID, "exam-quiz", "", "exam: the timed quiz (default: the served timed quiz with the shortest time limit); the exam lasts its time limit")
	fs.DurationVar(&x.LoginSpread, "exam-login-spread", time.Minute, "exam: the logins spread evenly over this")
	fs.DurationVar(&x.StartWithin, "exam-start-within", 5*time.Second, "exam: every session starts within this after the logins")
	fs.DurationVar(&x.SaveEveryMin, "exam-save-min", 5*time.Second, "exam: shortest pause between a student's autosaves")
	fs.DurationVar(&x.SaveEveryMax, "exam-save-max", 10*time.Second, "exam: longest pause between a student's autosaves")
	fs.DurationVar(&x.SubmitWindow, "exam-submit-window", time.Minute, "exam: submits fall within this before the deadline")
	fs.Float64Var(&x.SubmitShare, "exam-submit-share", 0.8, "exam: share of students who submit; the rest are finalized by the deadline (negative: none submits)")
	fs.Float64Var(&x.ResaveShare, "exam-resave", 0.05, "exam: share of saves re-sent with the same seq (negative: none)")
	fs.Float64Var(&x.OutOfOrderShare, "exam-out-of-order", 0.05, "exam: share of saves sent after the next, higher-seq one (negative: none)")
	keyPath := fs.String("exam-key", "", `exam: a JSON file of the quiz's answer key, {"question id": "correct choice id", ...}, to check every attempt's score against the grading of its saves (without it, the saves alone are checked)`)
	fs.DurationVar(&x.FinalizePoll, "exam-finalize-poll", 250*time.Millisecond, "exam: how often a session left to its deadline is read until its attempt is recorded")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to this file (pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	if c.Weights, err = load.ParseWeights(mix); err != nil {
		return err
	}
	if *exam {
		if *keyPath != "" {
			b, err := os.ReadFile(*keyPath)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &x.Key); err != nil {
				return fmt.Errorf("-exam-key %s: %w", *keyPath, err)
			}
		}
		c.Exam = &x
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	if !quiet {
		c.Progress = func(p load.Progress) {
			if tty { // one line, rewritten
				fmt.Fprintf(stderr, "\r\033[K%s", p)
				return
			}
			fmt.Fprintln(stderr, p)
		}
	}
	res, err := load.Run(ctx, c)
	if !quiet && tty {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if jsonPath != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if res.Verify != nil && !res.Verify.OK || res.Exam != nil && res.Exam.Verify != nil && !res.Exam.Verify.OK {
		return errors.New("the check after the run failed")
	}
	return nil
}
