package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	fs.StringVar(&o.rebuild, "rebuild", "", "rebuild a projection instead of restoring attempts: \"progress\" or \"readmodel\"")
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
	if o.rebuild == "readmodel" {
		return rebuildReadModel(ctx, c, in, st, js)
	}
	cfg := o.cfg
	cfg.Store, cfg.JetStream, cfg.Stream, cfg.Logger = st, js, c.Stream, log
	meterOut := in.stdout
	if c.JSON {
		meterOut = in.stderr
	}
	m := progress.New(meterOut, log, "replay "+cfg.Mode.Name(), "events")
	cfg.Progress = m.Update
	res, err := replay.Run(ctx, cfg)
	m.Stop()
	switch {
	case res.Mode == "":
	case c.JSON:
		err = errors.Join(err, printJSON(in.stdout, res))
	default:
		res.WriteText(in.stdout, cfg, err)
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
	case o.rebuild != "" && o.rebuild != "progress" && o.rebuild != "readmodel":
		return usageErr("replay: --rebuild %q: the projections that can be rebuilt are progress and readmodel", o.rebuild)
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

// rebuildReadModel rebuilds the student read model (replay.RebuildReadModel)
// and prints what it did. Differing values left in place return errDrift.
func rebuildReadModel(ctx context.Context, c *config, in invocation, st *store.Store, js jetstream.JetStream) error {
	res, err := replay.RebuildReadModel(ctx, replay.ReadModelConfig{Store: st, JetStream: js, Stream: c.Stream,
		Swap: c.Replay.cfg.Swap, Logger: in.log})
	if c.JSON {
		err = errors.Join(err, printJSON(in.stdout, res))
	} else {
		fmt.Fprintf(in.stdout, "replay rebuild readmodel: %d events folded into the shadow (%d undecodable), %d students in PostgreSQL\n",
			res.Read, res.Poison, res.Students)
		fmt.Fprintf(in.stdout, "  shadow equal to PostgreSQL: %d; from PostgreSQL (history beyond the stream): %d; in the stream only: %d\n",
			res.Matched, res.FromPostgres, res.NotInPostgres)
		fmt.Fprintf(in.stdout, "  sessions and checks of %d students: values differing: %d; swapped: %d\n",
			res.Parts.Students, res.Parts.Differed, res.Parts.Swapped)
		fmt.Fprintf(in.stdout, "  live values differing: %d; swapped: %d; took %s\n", res.Differed, res.Swapped, res.Duration.Round(time.Millisecond))
	}
	if drift := res.Differed - res.Swapped + res.Parts.Differed - res.Parts.Swapped; err == nil && drift > 0 {
		return fmt.Errorf("%w: %d values of the read model differ from PostgreSQL (--swap replaces them)", errDrift, drift)
	}
	return err
}
