package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/progress"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store"
)

// replayOptions are the flags of one replay: the replay's Config, and the
// flags that choose its Mode and its range in time.
type replayOptions struct {
	cfg          replay.Config
	rebuild      string
	dryRun       bool
	exams        bool
	since, until string
}

func replayFlags(fs *flag.FlagSet, c *config) {
	o := &c.Replay
	fs.Uint64Var(&o.cfg.FromSeq, "from-seq", 1, "first stream sequence to read")
	fs.StringVar(&o.since, "since", "", "read from the first event stored at or after this RFC 3339 time, instead of --from-seq")
	fs.StringVar(&o.until, "until", "", "read up to the last event stored at or before this RFC 3339 time (default: the stream's last event when the replay starts)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "validate and count, write nothing")
	fs.BoolVar(&o.exams, "exams", false, "restore the timed-exam sessions and answers from the exams stream instead of attempts")
	fs.StringVar(&o.rebuild, "rebuild", "", "rebuild a projection instead of restoring attempts; the only one is \"progress\"")
	fs.BoolVar(&o.cfg.Swap, "swap", false, "with --rebuild: replace the live table with the rebuilt one")
	fs.BoolVar(&o.cfg.KeepShadow, "keep-shadow", false, "with --rebuild and without --swap: keep the rebuilt table as progress_rebuild for inspection")
	fs.IntVar(&o.cfg.DiffRows, "diff-rows", 10, "with --rebuild: how many differing rows to print")
	fs.DurationVar(&o.cfg.LockTimeout, "lock-timeout", replay.DefaultLockTimeout, "with --swap: how long to wait for the lock on progress before giving up")
	fs.BoolVar(&c.JSON, "json", false, "print the result as JSON (the progress meter goes to stderr)")
}

// runReplay re-reads the attempts stream to restore the database or
// rebuild a projection, and prints what it did. A rebuild that finds the
// live table differing and leaves it so returns errDrift.
func runReplay(ctx context.Context, c *config, in invocation) error {
	o, log := &c.Replay, in.log
	if err := o.validate(); err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	nc, js, err := app.ConnectJetStream(c.NATSURL, c.NATSAuth, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	cfg := o.cfg
	cfg.Store, cfg.JetStream, cfg.Stream, cfg.Logger = st, js, c.Stream, log
	meterOut := in.stdout
	if c.JSON {
		meterOut = in.stderr
	}
	m := progress.New(meterOut, log, "replay "+modeName(cfg.Mode), "events")
	cfg.Progress = m.Update
	res, err := replay.Run(ctx, cfg)
	m.Stop()
	switch {
	case res.Mode == "":
	case c.JSON:
		err = errors.Join(err, printJSON(in.stdout, res))
	default:
		printReplay(in.stdout, cfg, res, err)
	}
	if err == nil && res.Diff != nil && res.Diff.Differs() && !res.Swapped {
		return fmt.Errorf("%w: the live progress table differs from the one rebuilt from the stream (--swap replaces it)", errDrift)
	}
	return resumeHint(err, res)
}

// validate checks the flags against each other, parses the times and
// sets the Mode; its errors are usage errors.
func (o *replayOptions) validate() error {
	c := &o.cfg
	var err error
	if o.since != "" {
		if c.Since, err = parseTime("--since", o.since); err != nil {
			return err
		}
	}
	if o.until != "" {
		if c.Until, err = parseTime("--until", o.until); err != nil {
			return err
		}
	}
	switch {
	case c.FromSeq == 0:
		return usageErr("replay: --from-seq must be at least 1")
	case c.FromSeq != 1 && o.since != "":
		return usageErr("replay: --from-seq and --since are exclusive: choose where to start by sequence or by time")
	case o.since != "" && o.until != "" && c.Until.Before(c.Since):
		return usageErr("replay: --until %s is before --since %s", o.until, o.since)
	case c.BatchSize < 1 || c.BatchSize > replay.MaxBatchSize:
		return usageErr("replay: --batch-size must be between 1 and %d, not %d", replay.MaxBatchSize, c.BatchSize)
	case o.rebuild != "" && o.rebuild != "progress":
		return usageErr("replay: --rebuild %q: the only projection that can be rebuilt is progress", o.rebuild)
	case o.rebuild != "" && o.dryRun:
		return usageErr("replay: --dry-run and --rebuild are exclusive: a rebuild without --swap already leaves the live table untouched")
	case c.Swap && o.rebuild == "":
		return usageErr("replay: --swap needs --rebuild progress")
	case c.KeepShadow && o.rebuild == "":
		return usageErr("replay: --keep-shadow needs --rebuild progress")
	case c.KeepShadow && c.Swap:
		return usageErr("replay: --keep-shadow and --swap are exclusive: after a swap the shadow is the live table")
	case c.DiffRows < 0:
		return usageErr("replay: --diff-rows must not be negative")
	case c.LockTimeout <= 0:
		return usageErr("replay: --lock-timeout must be positive")
	}
	switch {
	case o.exams && (o.rebuild != "" || o.dryRun):
		return usageErr("replay: --exams restores; it goes with neither --rebuild nor --dry-run")
	case o.exams:
		c.Mode = replay.RestoreExams
	case o.rebuild != "":
		c.Mode = replay.RebuildProgress
	case o.dryRun:
		c.Mode = replay.DryRun
	default:
		c.Mode = replay.Restore
	}
	return nil
}

func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usageErr("replay: %s %q is not an RFC 3339 time (like 2025-01-31T08:00:00Z): %v", name, v, err)
	}
	return t, nil
}

// resumeHint adds to an interrupted replay's error the flag that goes on
// from where it stopped.
func resumeHint(err error, res replay.Result) error {
	if errors.Is(err, replay.ErrInterrupted) && res.ResumeSeq > 0 {
		return fmt.Errorf("%w: run again with --from-seq %d to go on", err, res.ResumeSeq)
	}
	return err
}

// modeName is how the summary names a mode.
func modeName(m replay.Mode) string {
	if m == replay.DryRun {
		return "dry run (nothing written)"
	}
	return string(m)
}

// printReplay prints what a replay did: a summary, and for a rebuild how
// the live progress table differs from the rebuilt one and what became of
// them.
func printReplay(w io.Writer, cfg replay.Config, res replay.Result, err error) {
	fmt.Fprintf(w, "replay %s: ", modeName(res.Mode))
	switch {
	case res.Read == 0:
		fmt.Fprintln(w, "no events in the range")
	default:
		fmt.Fprintf(w, "stream seq %d to %d\n", res.FirstSeq, res.LastSeq)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  read\t%d\tevents\n", res.Read)
	switch res.Mode {
	case replay.RebuildProgress:
		fmt.Fprintf(tw, "  counted\t%d\tevents of attempts stored as recorded\n", res.Counted)
		fmt.Fprintf(tw, "  not counted\t%d\tevents of attempts not stored as recorded (yet), or counted already\n", res.NotCounted)
		fmt.Fprintf(tw, "  poison\t%d\tundecodable events, skipped\n", res.Poison)
		fmt.Fprintf(tw, "  from table\t%d\trecorded attempts counted from the attempts table (event outside the range, or stored after it was read)\n", res.FromTable)
	case replay.DryRun:
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
	if res.Diff == nil {
		return
	}
	printDiff(w, res.Diff)
	switch {
	case res.Swapped:
		fmt.Fprintf(w, "progress swapped: the rebuilt table is live (%d attempt(s) stored meanwhile counted under the lock, swap took %s)\n",
			res.CountedUnderLock, res.SwapDuration.Round(time.Millisecond))
	case cfg.Swap: // the swap failed: err says why
	case cfg.KeepShadow:
		fmt.Fprintln(w, "live progress untouched (--swap replaces it); the rebuilt table is kept as progress_rebuild, and goes stale as workers write")
	default:
		fmt.Fprintln(w, "live progress untouched (--swap replaces it); the rebuilt table is dropped")
	}
}

// printDiff prints how the live progress table differs from the rebuilt one.
func printDiff(w io.Writer, d *store.ProgressDiff) {
	fmt.Fprintf(w, "\nprogress: %d live rows, %d rebuilt rows", d.LiveRows, d.RebuiltRows)
	if !d.Differs() {
		fmt.Fprintln(w, ": no differences")
		return
	}
	fmt.Fprintf(w, ": %d changed, %d missing from live, %d only in live\n", d.Changed, d.Missing, d.Extra)
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
	_ = tw.Flush() // unreported, as in printReplay
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
