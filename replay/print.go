package replay

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/store"
)

// Name is how the summary and the progress meter name a mode.
func (m Mode) Name() string {
	if m == DryRun {
		return "dry run (nothing written)"
	}
	return string(m)
}

// WriteText prints what a replay run with cfg did, as `quizstream replay`
// shows it: a summary, and for a rebuild how the live tables differ from
// the rebuilt ones and what became of them; err is the replay's. A failed write goes unreported: the command returns the
// replay's outcome, which this only describes.
func (res Result) WriteText(w io.Writer, cfg Config, err error) {
	fmt.Fprintf(w, "replay %s: ", res.Mode.Name())
	switch {
	case res.Read == 0:
		fmt.Fprintln(w, "no events in the range")
	default:
		fmt.Fprintf(w, "stream seq %d to %d\n", res.FirstSeq, res.LastSeq)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  read\t%d\tevents\n", res.Read)
	switch res.Mode {
	case RebuildProgress:
		fmt.Fprintf(tw, "  counted\t%d\tevents of attempts stored as recorded\n", res.Counted)
		fmt.Fprintf(tw, "  not counted\t%d\tevents of attempts not stored as recorded (yet), or counted already\n", res.NotCounted)
		fmt.Fprintf(tw, "  poison\t%d\tundecodable events, skipped\n", res.Poison)
		fmt.Fprintf(tw, "  from table\t%d\trecorded attempts counted from the attempts table (event outside the range, or stored after it was read)\n", res.FromTable)
	case RebuildChecks:
		fmt.Fprintf(tw, "  changed\t%d\tcheck rows the events inserted or advanced\n", res.Counted)
		fmt.Fprintf(tw, "  unchanged\t%d\tevents folded into a row of their batch, or finding it as advanced already\n", res.NotCounted)
		fmt.Fprintf(tw, "  poison\t%d\tundecodable events, skipped\n", res.Poison)
		fmt.Fprintf(tw, "  from live\t%d\tlive rows folded in (their events gone from the stream, or stored after it was read)\n", res.FromTable)
	case DryRun:
		fmt.Fprintf(tw, "  stored\t%d\tnew rows a restore would store\n", res.Stored)
		fmt.Fprintf(tw, "  already present\t%d\tattempts stored before\n", res.AlreadyPresent)
		fmt.Fprintf(tw, "  poison\t%d\tevents a restore would set aside\n", res.Poison)
	default:
		fmt.Fprintf(tw, "  stored\t%d\tnew rows\n", res.Stored)
		fmt.Fprintf(tw, "  already present\t%d\tattempts stored before\n", res.AlreadyPresent)
		fmt.Fprintf(tw, "  poison\t%d\tevents set aside (their failed tombstones restored where they decode)\n", res.Poison)
	}
	fmt.Fprintf(tw, "  duration\t%s\t\n", res.Duration.Round(time.Millisecond))
	fmt.Fprintf(tw, "  rate\t%.0f\tevents/s\n", res.Rate())
	if err != nil {
		fmt.Fprintf(tw, "  stopped\t\t%v\n", err)
	}
	// As with the Fprintf calls, a failed write to stdout goes unreported:
	// the command returns the replay's outcome, which this only describes.
	_ = tw.Flush()
	// What became of the tables, in the words of each projection.
	var swapped, kept, dropped string
	switch {
	case res.Diff != nil:
		printDiff(w, res.Diff)
		swapped = "progress swapped: the rebuilt table is live (%d attempt(s) stored meanwhile counted under the lock, swap took %s)\n"
		kept = "live progress untouched (--swap replaces it); the rebuilt table is kept as progress_rebuild, and goes stale as workers write"
		dropped = "live progress untouched (--swap replaces it); the rebuilt table is dropped"
	case res.Checks != nil:
		printChecksDiff(w, res.Checks)
		swapped = "checks swapped: the rebuilt tables are live (%d row(s) stored meanwhile folded in under the lock, swap took %s)\n"
		kept = "live checks untouched (--swap replaces them); the rebuilt tables are kept as checks_rebuild and exercise_passes_rebuild, and go stale as workers write"
		dropped = "live checks untouched (--swap replaces them); the rebuilt tables are dropped"
	default:
		return
	}
	switch {
	case res.Swapped:
		fmt.Fprintf(w, swapped, res.CountedUnderLock, res.SwapDuration.Round(time.Millisecond))
	case cfg.Swap: // the swap failed: err says why
	case cfg.KeepShadow:
		fmt.Fprintln(w, kept)
	default:
		fmt.Fprintln(w, dropped)
	}
}

// Drift describes the differences a rebuild found and left in the live
// tables; "" when it found none, swapped them away, or was no rebuild.
func (res Result) Drift() string {
	switch {
	case res.Swapped:
	case res.Diff != nil && res.Diff.Differs():
		return "the live progress table differs from the one rebuilt from the stream (--swap replaces it)"
	case res.Checks != nil && res.Checks.Differs():
		return "the live checks tables differ from the ones rebuilt from the stream (--swap replaces them)"
	}
	return ""
}

// printDiff prints how the live progress table differs from the rebuilt one.
func printDiff(w io.Writer, d *store.ProgressDiff) {
	fmt.Fprintf(w, "\nprogress: %d live rows, %d rebuilt rows", d.LiveRows, d.RebuiltRows)
	printCounts(w, d.Changed, d.Missing, d.Extra)
	if len(d.First) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tSTUDENT\tQUIZ\tLIVE attempts/best\tREBUILT attempts/best")
	for _, row := range d.First {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", row.Kind(), row.StudentID, row.QuizID,
			counts(row.LiveAttempts, row.LiveBest, row.LiveCourseID, row.RebuiltCourseID),
			counts(row.RebuiltAttempts, row.RebuiltBest, row.RebuiltCourseID, row.LiveCourseID))
	}
	_ = tw.Flush() // unreported, as in WriteText
	if n := d.Changed + d.Missing + d.Extra; n > int64(len(d.First)) {
		fmt.Fprintf(w, "  ... and %d more\n", n-int64(len(d.First)))
	}
}

// counts formats one side of a differing row; the course is shown only
// when it is what differs.
func counts(attempts, best *int, course, otherCourse *uuid.UUID) string {
	if attempts == nil || best == nil {
		return "-"
	}
	s := fmt.Sprintf("%d/%d", *attempts, *best)
	if course != nil && otherCourse != nil && *course != *otherCourse {
		s += " course " + course.String()
	}
	return s
}

// printChecksDiff prints how the live checks tables differ from the
// rebuilt ones.
func printChecksDiff(w io.Writer, d *store.CheckDiff) {
	fmt.Fprintf(w, "\nchecks: %d live rows, %d rebuilt rows", d.LiveRows, d.RebuiltRows)
	printCounts(w, d.Changed, d.Missing, d.Extra)
	fmt.Fprintf(w, "exercises passed: %d live rows, %d rebuilt rows", d.LivePasses, d.RebuiltPasses)
	printCounts(w, d.PassesChanged, d.PassesMissing, d.PassesExtra)
	if len(d.First) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tCHECK\tSTUDENT\tLIVE status\tREBUILT status")
	for _, row := range d.First {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", row.Kind(), row.CheckID, row.StudentID, orDash(row.LiveStatus), orDash(row.RebuiltStatus))
	}
	_ = tw.Flush() // unreported, as in WriteText
	if n := d.Changed + d.Missing + d.Extra; n > int64(len(d.First)) {
		fmt.Fprintf(w, "  ... and %d more\n", n-int64(len(d.First)))
	}
}

// printCounts ends a line of row counts with the differences by kind.
func printCounts(w io.Writer, changed, missing, extra int64) {
	if changed+missing+extra == 0 {
		fmt.Fprintln(w, ": no differences")
		return
	}
	fmt.Fprintf(w, ": %d changed, %d missing from live, %d only in live\n", changed, missing, extra)
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
