package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/progress"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store"
)

// replayOptions are the flags of one replay: the replay's Config, and the
// flags that choose its Mode (or the projection rebuilt) and its range in
// time.
type replayOptions struct {
	cfg          replay.Config
	rebuild      string
	projection   *replay.Projection // the one --rebuild names
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
	fs.StringVar(&o.rebuild, "rebuild", "", "rebuild a projection instead of restoring attempts: checks, progress or readmodel")
	fs.BoolVar(&o.cfg.Swap, "swap", false, "with --rebuild: replace the live projection with the rebuilt one")
	fs.BoolVar(&o.cfg.KeepShadow, "keep-shadow", false, "with --rebuild checks or progress and without --swap: keep the rebuilt tables for inspection")
	fs.IntVar(&o.cfg.DiffRows, "diff-rows", 10, "with --rebuild: how many differing rows to print")
	fs.DurationVar(&o.cfg.LockTimeout, "lock-timeout", replay.DefaultLockTimeout, "with --swap: how long to wait for the lock on the live tables before giving up")
	fs.BoolVar(&c.JSON, "json", false, "print the result as JSON (the progress meter goes to stderr)")
}

// runReplay re-reads a stream to restore the database or rebuild a
// projection, and prints what it did. A rebuild that finds the live
// projection differing and leaves it so returns errDrift.
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
	cfg.Store, cfg.JetStream, cfg.Stream, cfg.ExamStream, cfg.Checks, cfg.Logger = st, js, c.Stream, c.Exams, c.Checks, log
	meterOut := in.stdout
	if c.JSON {
		meterOut = in.stderr
	}
	m := progress.New(meterOut, log, "replay "+cfg.Mode.Name(), "events")
	cfg.Progress = m.Update
	var res replay.Rebuilt
	var run replay.Result
	if o.projection != nil {
		res, err = o.projection.Rebuild(ctx, cfg)
	} else if run, err = replay.Run(ctx, cfg); run.Mode != "" {
		res = run
	}
	m.Stop()
	switch {
	case res == nil:
	case c.JSON:
		err = errors.Join(err, printJSON(in.stdout, res))
	default:
		res.WriteText(in.stdout, cfg, err)
	}
	if err == nil && res != nil && res.Drift() != "" {
		return fmt.Errorf("%w: %s", errDrift, res.Drift())
	}
	return resumeHint(err, run)
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
	if o.rebuild != "" {
		p, err := replay.Lookup(o.rebuild)
		if err != nil {
			return usageErr("%v", err)
		}
		o.projection = &p
	}
	p := o.projection
	switch {
	case c.FromSeq == 0:
		return usageErr("replay: --from-seq must be at least 1")
	case c.FromSeq != 1 && o.since != "":
		return usageErr("replay: --from-seq and --since are exclusive: choose where to start by sequence or by time")
	case o.since != "" && o.until != "" && c.Until.Before(c.Since):
		return usageErr("replay: --until %s is before --since %s", o.until, o.since)
	case c.BatchSize < 1 || c.BatchSize > replay.MaxBatchSize:
		return usageErr("replay: --batch-size must be between 1 and %d, not %d", replay.MaxBatchSize, c.BatchSize)
	case p != nil && !p.Ranged && (c.FromSeq != 1 || o.since != "" || o.until != ""):
		return usageErr("replay: --rebuild %s reads its whole stream: --from-seq, --since and --until do not apply", p.Name)
	case p != nil && o.dryRun:
		return usageErr("replay: --dry-run and --rebuild are exclusive: a rebuild without --swap already leaves the live table untouched")
	case c.Swap && p == nil:
		return usageErr("replay: --swap needs --rebuild")
	case c.KeepShadow && (p == nil || !p.Tables()):
		return usageErr("replay: --keep-shadow needs --rebuild checks or progress")
	case c.KeepShadow && c.Swap:
		return usageErr("replay: --keep-shadow and --swap are exclusive: after a swap the shadow is the live table")
	case c.DiffRows < 0:
		return usageErr("replay: --diff-rows must not be negative")
	case c.LockTimeout <= 0:
		return usageErr("replay: --lock-timeout must be positive")
	}
	switch {
	case o.exams && (p != nil || o.dryRun):
		return usageErr("replay: --exams restores; it goes with neither --rebuild nor --dry-run")
	case o.exams:
		c.Mode = replay.RestoreExams
	case p != nil:
		c.Mode = p.Mode
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
