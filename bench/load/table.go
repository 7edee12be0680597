package load

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints r as the final table: one row per task (latencies in
// milliseconds), the total, signup, the 202s and the check. It returns
// the first write error.
func (r Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	switch {
	case r.Exam != nil:
		x := r.Exam
		fmt.Fprintf(&b, "exam, %d students, quiz %s (%ds, grace %ds), %.1fs from the first login\n", r.Users, x.QuizID, x.TimeLimitS, x.GraceS, r.Window)
	case r.Mode == "open":
		fmt.Fprintf(&b, "open model, %.0f tasks/s over %d students", r.Rate, r.Users)
		fmt.Fprintf(&b, ", warm-up %gs, measured %gs, mix %s\n", r.WarmUp, r.Window, r.Weights)
	default:
		fmt.Fprintf(&b, "closed model, %d students, think time %gs", r.Users, r.ThinkTime)
		fmt.Fprintf(&b, ", warm-up %gs, measured %gs, mix %s\n", r.WarmUp, r.Window, r.Weights)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "task\trequests\treq/s\t304\t503\t429\terrors\tp50 ms\tp90\tp99\tp99.9\tmax\t")
	row := func(t TaskResult) {
		l := t.Latency
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", t.Name, t.Requests, t.RPS,
			t.NotModified, t.Unavailable, t.RateLimited, t.Errors, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	for _, t := range r.Tasks {
		row(t)
	}
	row(r.Total)
	row(r.Signup)
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Exam != nil {
		writeExam(&b, r.Exam)
	}
	if r.Late > 0 {
		fmt.Fprintf(&b, "%d arrivals sent over 5ms late (their wait is in their latency)\n", r.Late)
	}
	if r.Exam == nil {
		fmt.Fprintf(&b, "202s: %d (%d re-sent with the same key)", r.Accepted, r.Resends)
	}
	if r.Lag.Count > 0 {
		fmt.Fprintf(&b, "; 202 -> recorded: p50 %.1fms p99 %.1fms max %.1fms (%d sampled, %d timed out, %d of %d reads failed)",
			r.Lag.P50, r.Lag.P99, r.Lag.Max, r.Lag.Count, r.LagTimedOut, r.LagPollErrors, r.LagPolls)
	}
	if r.Exam == nil {
		b.WriteString("\n")
	}
	if v := r.Verify; v != nil {
		verdict := "FAILED"
		if v.OK {
			verdict = "OK"
		}
		fmt.Fprintf(&b, "check %s: %d keys answered 202, %d recorded with their 202's score and submitted_at, %d listed once;"+
			" %d not recorded, %d mismatched, %d missing, %d duplicated, %d extra (%d of unknown outcome);"+
			" progress agrees for %d of %d students; all recorded %.1fs after the load\n",
			verdict, v.Keys, v.Recorded, v.Listed, v.NotRecorded, v.Mismatched, v.Missing, v.Duplicated, v.Extra, v.Unknown,
			v.ProgressChecked-v.ProgressMismatched, v.Students, v.SettleSeconds)
		for _, p := range v.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeExam prints the exam workload's figures and check.
func writeExam(b *strings.Builder, x *ExamResult) {
	fmt.Fprintf(b, "logins: %.1f/s over %.1fs; sessions %d: %d to submit (%d submits answered 202), %d left to the deadline\n",
		x.LoginRate, x.LoginWindowS, x.Sessions, x.Submitters, x.Submitted, x.Expired)
	fmt.Fprintf(b, "saves answered 202: %d (%d re-sent, %d sent after a later one)\n", x.Saves, x.Resaves, x.OutOfOrder)
	l := x.Lateness
	fmt.Fprintf(b, "finalization lateness (deadline + grace -> attempt recorded, read every poll): p50 %.0fms p99 %.0fms max %.0fms (%d sessions, %d timed out, %d reads)\n",
		l.P50, l.P99, l.Max, l.Count, x.LatenessTimedOut, x.FinalizePolls)
	v := x.Verify
	if v == nil {
		return
	}
	verdict := "FAILED"
	if v.OK {
		verdict = "OK"
	}
	fmt.Fprintf(b, "check %s: %d sessions (%d students never started), %d recorded, %d with the highest-seq saves exactly (%d questions ambiguous),"+
		" %d graded to their answers' score, %d listed once; %d not recorded, %d in another state, %d other answers, %d other scores,"+
		" %d missing, %d duplicated, %d extra; all recorded %.1fs after the exam\n",
		verdict, v.Sessions, v.Unstarted, v.Recorded, v.AnswersExact, v.AmbiguousQuestions, v.Graded, v.Listed,
		v.NotRecorded, v.StateMismatched, v.AnswersMismatched, v.ScoreMismatched, v.Missing, v.Duplicated, v.Extra, v.SettleSeconds)
	for _, p := range v.Problems {
		fmt.Fprintf(b, "  %s\n", p)
	}
}
