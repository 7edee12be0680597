package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

const replayUsage = `usage: quizstream replay [flags]

Re-reads the attempts stream, from --from-seq (default 1) or --since, to
--until or the stream's last sequence when the replay starts.

modes:
  (default)           restore: store every event as a worker would (same
                      writer, same transactions); idempotent, so replaying
                      over a live database changes nothing
  --dry-run           read, decode and validate every event (each batch is
                      written in a transaction that is rolled back); counts
                      what a restore would store, find stored, set aside
  --rebuild progress  rebuild the progress projection into a shadow table and
                      print how it differs from the live one; with --swap,
                      replace the live table atomically, under an ACCESS
                      EXCLUSIVE lock held for a scan of attempts (about 1s
                      per million attempts; workers wait meanwhile)

flags:
`

// replayOptions are the flags of one replay.
type replayOptions struct {
	rng         events.Range
	rebuild     string
	swap        bool
	keepShadow  bool
	dryRun      bool
	diffRows    int
	lockTimeout time.Duration
}

// runReplay re-reads the attempts stream to restore the database or
// rebuild a projection.
func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	var o replayOptions
	f := newFlags("replay", getenv, stderr)
	f.common(&c)
	f.database(&c)
	f.nats(&c, true)
	f.int(&o.rng.BatchSize, "BATCH_SIZE", 500, "events read and written per batch")
	f.fs.Uint64Var(&o.rng.FromSeq, "from-seq", 1, "first stream sequence to read")
	since := f.fs.String("since", "", "read from the first event stored at or after this RFC 3339 time, instead of --from-seq")
	until := f.fs.String("until", "", "read up to the last event stored at or before this RFC 3339 time (default: the stream's last event when the replay starts)")
	f.fs.BoolVar(&o.dryRun, "dry-run", false, "validate and count, write nothing")
	f.fs.StringVar(&o.rebuild, "rebuild", "", "rebuild a projection instead of restoring attempts; the only one is \"progress\"")
	f.fs.BoolVar(&o.swap, "swap", false, "with --rebuild: replace the live table with the rebuilt one")
	f.fs.BoolVar(&o.keepShadow, "keep-shadow", false, "with --rebuild and without --swap: keep the rebuilt table as progress_rebuild for inspection")
	f.fs.IntVar(&o.diffRows, "diff-rows", 10, "with --rebuild: how many differing rows to print")
	f.fs.DurationVar(&o.lockTimeout, "lock-timeout", 30*time.Second, "with --swap: how long to wait for the lock on progress before giving up")
	f.fs.Usage = func() {
		fmt.Fprint(stderr, replayUsage)
		f.fs.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if err := o.validate(f, *since, *until); err != nil {
		return err
	}
	if c.NATSURL == "" {
		return errors.New("replay: NATS_URL is required")
	}
	log, err := newLogger(&c, stderr)
	if err != nil {
		return err
	}
	f.logConfig(log, "replay")

	st, _, js, closeAll, err := connect(ctx, &c, log, nil)
	if err != nil {
		return err
	}
	defer closeAll()
	r := &replay{opts: o, st: st, log: log, stdout: stdout}
	return r.run(ctx, js, c.Stream)
}

// validate checks the flags against each other and parses the times.
func (o *replayOptions) validate(f *flags, since, until string) error {
	fromSeqSet := false
	f.fs.Visit(func(fl *flag.Flag) { fromSeqSet = fromSeqSet || fl.Name == "from-seq" })
	var err error
	if since != "" {
		if o.rng.Since, err = parseTime("--since", since); err != nil {
			return err
		}
	}
	if until != "" {
		if o.rng.Until, err = parseTime("--until", until); err != nil {
			return err
		}
	}
	switch {
	case o.rng.FromSeq == 0:
		return errors.New("replay: --from-seq must be at least 1")
	case fromSeqSet && since != "":
		return errors.New("replay: --from-seq and --since are exclusive: choose where to start by sequence or by time")
	case since != "" && until != "" && o.rng.Until.Before(o.rng.Since):
		return fmt.Errorf("replay: --until %s is before --since %s", until, since)
	case o.rng.BatchSize < 1 || o.rng.BatchSize > 10000:
		return fmt.Errorf("replay: --batch-size must be between 1 and 10000, not %d", o.rng.BatchSize)
	case o.rebuild != "" && o.rebuild != "progress":
		return fmt.Errorf("replay: --rebuild %q: the only projection that can be rebuilt is progress", o.rebuild)
	case o.rebuild != "" && o.dryRun:
		return errors.New("replay: --dry-run and --rebuild are exclusive: a rebuild without --swap already leaves the live table untouched")
	case o.swap && o.rebuild == "":
		return errors.New("replay: --swap needs --rebuild progress")
	case o.keepShadow && o.rebuild == "":
		return errors.New("replay: --keep-shadow needs --rebuild progress")
	case o.keepShadow && o.swap:
		return errors.New("replay: --keep-shadow and --swap are exclusive: after a swap the shadow is the live table")
	case o.diffRows < 0:
		return errors.New("replay: --diff-rows must not be negative")
	case o.lockTimeout <= 0:
		return errors.New("replay: --lock-timeout must be positive")
	}
	return nil
}

func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("replay: %s %q is not an RFC 3339 time (like 2025-01-31T08:00:00Z): %w", name, v, err)
	}
	return t, nil
}

// replay is one run of the command.
type replay struct {
	opts   replayOptions
	st     *store.Store
	log    *slog.Logger
	stdout io.Writer

	mode       string
	first      uint64 // first and last sequences read
	last       uint64
	read       atomic.Int64
	stored     int64 // restore: new rows; dry run: would be new
	present    int64 // restore and dry run: stored before
	poison     int64 // every mode: set aside (restore, dry run) or undecodable (rebuild)
	counted    int64 // rebuild: events counted into the shadow
	notCounted int64 // rebuild: decoded events not counted
	fromTable  int64 // rebuild: recorded attempts counted from the table
}

func (r *replay) run(ctx context.Context, js jetstream.JetStream, stream events.StreamConfig) error {
	rd, err := events.OpenReader(ctx, js, stream, r.opts.rng)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		rd.Close(cctx)
	}()
	switch {
	case r.opts.rebuild != "":
		r.mode = "rebuild " + r.opts.rebuild
	case r.opts.dryRun:
		r.mode = "dry run (nothing written)"
	default:
		r.mode = "restore"
	}
	r.log.Info("replay: started", "mode", r.mode, "stream", stream.Name,
		"from_seq", r.opts.rng.FromSeq, "since", r.opts.rng.Since, "until", r.opts.rng.Until,
		"last_seq", rd.Last(), "estimate", rd.Estimate())

	var rb *store.ProgressRebuild
	var wr *worker.Writer
	if r.opts.rebuild != "" {
		if rb, err = r.st.StartProgressRebuild(ctx); err != nil {
			return err
		}
		defer func() {
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			if err := rb.Close(cctx, r.opts.keepShadow); err != nil {
				r.log.Warn("replay: shadow tables not dropped", "err", err)
			}
		}()
	} else {
		wr = worker.NewWriter(r.st, worker.WriterConfig{Tombstones: true, DryRun: r.opts.dryRun, Logger: r.log})
	}

	start := time.Now()
	m := r.startMeter(rd.Estimate(), start)
	var runErr error
	for runErr == nil {
		msgs, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			runErr = err
			break
		}
		if r.first == 0 {
			r.first = msgs[0].Seq
		}
		if rb != nil {
			runErr = r.fold(ctx, rb, msgs)
		} else {
			runErr = r.write(ctx, wr, msgs)
		}
		m.add(len(msgs))
	}
	m.stop()
	if runErr == nil && rb != nil {
		runErr = r.finishRebuild(ctx, rb, start)
		return r.interrupted(ctx, runErr)
	}
	r.printSummary(time.Since(start), runErr)
	return r.interrupted(ctx, runErr)
}

// interrupted turns a cancelled context into an error that says what is
// left to do.
func (r *replay) interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	var resume resumeError
	switch {
	case r.opts.rebuild != "":
		return errors.New("replay: interrupted; the live progress table is untouched")
	case errors.As(err, &resume):
	case r.last > 0:
		resume.seq = r.last + 1
	default:
		return errors.New("replay: interrupted before any event was settled")
	}
	return fmt.Errorf("replay: interrupted; events before seq %d are settled: run again with --from-seq %d to go on", resume.seq, resume.seq)
}

// resumeError is a batch left unsettled at seq because ctx ended.
type resumeError struct{ seq uint64 }

func (e resumeError) Error() string { return fmt.Sprintf("batch unsettled from seq %d", e.seq) }

// write stores (or, in a dry run, tries) one batch through the workers' writer.
func (r *replay) write(ctx context.Context, wr *worker.Writer, msgs []events.StreamMsg) error {
	recs := make([]worker.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = worker.Record{Seq: m.Seq, Subject: m.Subject, Data: m.Data}
	}
	out := wr.Write(ctx, recs)
	r.stored += out.Stored
	r.present += out.Duplicates
	r.poison += int64(len(out.Poison))
	if len(out.Unsettled) > 0 {
		first := msgs[out.Unsettled[0]].Seq
		for _, i := range out.Unsettled {
			first = min(first, msgs[i].Seq)
		}
		r.last = first - 1
		return resumeError{seq: first}
	}
	r.last = msgs[len(msgs)-1].Seq
	return nil
}

// fold counts one batch of events into the progress shadow.
func (r *replay) fold(ctx context.Context, rb *store.ProgressRebuild, msgs []events.StreamMsg) error {
	evs := make([]store.ProgressEvent, 0, len(msgs))
	for _, m := range msgs {
		e, err := events.Decode(m.Data)
		if err == nil && m.Subject != e.Subject() {
			err = fmt.Errorf("%w: subject %s does not match the attempt", events.ErrUndecodable, m.Subject)
		}
		if err != nil {
			r.poison++
			r.log.Warn("replay: undecodable event skipped", "stream_seq", m.Seq, "subject", m.Subject, "err", err)
			continue
		}
		evs = append(evs, store.ProgressEvent{AttemptID: e.AttemptID, StudentID: e.StudentID,
			QuizID: e.QuizID, CourseID: e.CourseID, Score: e.Score})
	}
	var n int64
	err := retryTransient(ctx, r.log, "fold", func() (err error) {
		n, err = rb.Fold(ctx, evs)
		return err
	})
	if err != nil {
		return err
	}
	r.counted += n
	r.notCounted += int64(len(evs)) - n
	r.last = msgs[len(msgs)-1].Seq
	return nil
}

// finishRebuild compares the shadow with the live table, prints both, and
// swaps them when asked.
func (r *replay) finishRebuild(ctx context.Context, rb *store.ProgressRebuild, start time.Time) error {
	var d store.ProgressDiff
	err := retryTransient(ctx, r.log, "diff", func() (err error) {
		d, err = rb.Diff(ctx, r.opts.diffRows)
		return err
	})
	if err != nil {
		r.printSummary(time.Since(start), err)
		return err
	}
	r.fromTable += d.FoldedFromTable
	r.printSummary(time.Since(start), nil)
	r.printDiff(d)
	if !r.opts.swap {
		switch {
		case r.opts.keepShadow:
			fmt.Fprintln(r.stdout, "live progress untouched (--swap replaces it); the rebuilt table is kept as progress_rebuild, and goes stale as workers write")
		default:
			fmt.Fprintln(r.stdout, "live progress untouched (--swap replaces it); the rebuilt table is dropped")
		}
		return nil
	}
	swapStart := time.Now()
	var n int64
	err = retryTransient(ctx, r.log, "swap", func() (err error) {
		n, err = rb.Swap(ctx, r.opts.lockTimeout)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "progress swapped: the rebuilt table is live (%d attempt(s) stored meanwhile counted under the lock, swap took %s)\n",
		n, time.Since(swapStart).Round(time.Millisecond))
	r.log.Info("replay: progress swapped", "counted_under_lock", n, "duration", time.Since(swapStart))
	return nil
}

// retryTransient runs op until it succeeds, fails for good, or ctx ends;
// a database that is unreachable or restarting is waited for.
func retryTransient(ctx context.Context, log *slog.Logger, what string, op func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, 0
	return backoff.RetryNotify(func() error {
		err := op()
		if err != nil && !store.IsTransient(err) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(b, ctx), func(err error, d time.Duration) {
		log.Warn("replay: "+what+" failed, retrying", "err", err, "retry_in", d)
	})
}

// printSummary prints what the replay did, on stdout.
func (r *replay) printSummary(elapsed time.Duration, err error) {
	read := r.read.Load()
	fmt.Fprintf(r.stdout, "replay %s: ", r.mode)
	switch {
	case read == 0:
		fmt.Fprintln(r.stdout, "no events in the range")
	default:
		fmt.Fprintf(r.stdout, "stream seq %d to %d\n", r.first, r.last)
	}
	tw := tabwriter.NewWriter(r.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  read\t%d\tevents\n", read)
	switch {
	case r.opts.rebuild != "":
		fmt.Fprintf(tw, "  counted\t%d\tevents of attempts stored as recorded\n", r.counted)
		fmt.Fprintf(tw, "  not counted\t%d\tevents of attempts not stored as recorded (yet), or counted already\n", r.notCounted)
		fmt.Fprintf(tw, "  poison\t%d\tundecodable events, skipped\n", r.poison)
		fmt.Fprintf(tw, "  from table\t%d\trecorded attempts counted from the attempts table (event outside the range, or stored after it was read)\n", r.fromTable)
	case r.opts.dryRun:
		fmt.Fprintf(tw, "  stored\t%d\tnew rows a restore would store\n", r.stored)
		fmt.Fprintf(tw, "  already present\t%d\tattempts stored before\n", r.present)
		fmt.Fprintf(tw, "  poison\t%d\tevents a restore would set aside\n", r.poison)
	default:
		fmt.Fprintf(tw, "  stored\t%d\tnew rows\n", r.stored)
		fmt.Fprintf(tw, "  already present\t%d\tattempts stored before\n", r.present)
		fmt.Fprintf(tw, "  poison\t%d\tevents set aside (their failed tombstones restored where they decode)\n", r.poison)
	}
	fmt.Fprintf(tw, "  duration\t%s\t\n", elapsed.Round(time.Millisecond))
	fmt.Fprintf(tw, "  rate\t%.0f\tevents/s\n", rate(read, elapsed))
	if err != nil {
		fmt.Fprintf(tw, "  stopped\t\t%v\n", err)
	}
	tw.Flush()
	r.log.Info("replay: done", "mode", r.mode, "read", read, "stored", r.stored, "already_present", r.present,
		"poison", r.poison, "counted", r.counted, "not_counted", r.notCounted, "from_table", r.fromTable,
		"first_seq", r.first, "last_seq", r.last, "duration", elapsed, "rate_per_s", int64(rate(read, elapsed)), "err", err)
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// printDiff prints how the live progress table differs from the rebuilt one.
func (r *replay) printDiff(d store.ProgressDiff) {
	w := r.stdout
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
	tw.Flush()
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

// meter reports the replay's progress: a bar when stdout is a terminal,
// a log line every few seconds otherwise.
type meter struct {
	r      *replay
	bar    *progressbar.ProgressBar
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// meterInterval is how often progress is logged when stdout is not a terminal.
const meterInterval = 5 * time.Second

func (r *replay) startMeter(estimate uint64, start time.Time) *meter {
	m := &meter{r: r}
	if isTerminal(r.stdout) {
		max := int64(estimate)
		if max == 0 {
			max = -1 // a spinner
		}
		m.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(r.stdout),
			progressbar.OptionSetDescription("replay "+r.mode),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(r.stdout) }),
		)
		return m
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(meterInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				read := r.read.Load()
				elapsed := time.Since(start)
				attrs := []any{"read", read, "estimate", estimate, "rate_per_s", int64(rate(read, elapsed)), "elapsed", elapsed.Round(time.Second)}
				if per := rate(read, elapsed); per > 0 && uint64(read) < estimate {
					eta := time.Duration(float64(estimate-uint64(read)) / per * float64(time.Second))
					attrs = append(attrs, "eta", eta.Round(time.Second))
				}
				r.log.Info("replay: progress", attrs...)
			}
		}
	}()
	return m
}

func (m *meter) add(n int) {
	m.r.read.Add(int64(n))
	if m.bar != nil {
		_ = m.bar.Add(n)
	}
}

func (m *meter) stop() {
	if m.bar != nil {
		m.bar.ChangeMax64(max(m.r.read.Load(), 1))
		_ = m.bar.Finish()
		return
	}
	m.cancel()
	m.wg.Wait()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// cleanupContext outlives ctx's cancellation, briefly, for cleaning up
// after an interrupted replay.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}
