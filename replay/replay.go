// Package replay re-reads the streams, from a sequence or a time, to
// restore the database through the workers' own batch writers (so that a
// replay stores exactly what a worker would), to check what such a
// restore would do, or to rebuild a registered projection (Lookup) beside
// the live one, compare the two and swap it in. It returns what it did as
// a value that prints itself (WriteText) or encodes as JSON.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// Mode says what a replay does with the events it reads.
type Mode string

const (
	// Restore stores every event as a worker would (same writer, same
	// transactions, poison tombstoned); it is idempotent, so a restore over
	// a live database changes nothing.
	Restore Mode = "restore"
	// DryRun reads, decodes and validates every event, writing each batch
	// in a transaction that is rolled back: it counts what a restore would
	// store, find stored and set aside, and writes nothing.
	DryRun Mode = "dry run"
	// RebuildProgress rebuilds the progress projection into a shadow table
	// and compares it with the live one; with Config.Swap it then replaces
	// the live table.
	RebuildProgress Mode = "rebuild progress"
	// RebuildChecks rebuilds the checks projection (checks and
	// exercise_passes) from the whole checks stream (Config.Checks) into
	// shadow tables and compares them with the live ones; with
	// Config.Swap it then replaces the live tables.
	RebuildChecks Mode = "rebuild checks"
	// RestoreExams reads the exams stream (Config.ExamStream) instead, and
	// stores every session event as the exam workers do (worker.ExamWriter):
	// sessions, their answers (the highest seq of each question) and their
	// finals. It is idempotent. The attempts sessions became are restored
	// with the attempts stream (Restore).
	RestoreExams Mode = "restore exams"
)

// Defaults and bounds of Config, named once: the command's flags use them.
const (
	// DefaultBatchSize is Config.BatchSize when it is 0.
	DefaultBatchSize = 500
	// MaxBatchSize is the largest Config.BatchSize.
	MaxBatchSize = 10000
	// DefaultLockTimeout is Config.LockTimeout when it is 0.
	DefaultLockTimeout = 30 * time.Second
)

// Config says what to replay, how, and with what.
type Config struct {
	// Store is the database restored or rebuilt. Required.
	Store *store.Store
	// JetStream reads the stream. Required.
	JetStream jetstream.JetStream
	// Stream names the attempts stream; its zero fields take the defaults
	// of streams.StreamConfig.
	Stream streams.StreamConfig
	// ExamStream names the exams stream RestoreExams reads; its zero fields
	// take the defaults of streams.ExamStreamConfig.
	ExamStream streams.ExamStreamConfig
	// Checks names the checks stream RebuildChecks reads; its zero fields
	// take the defaults of streams.CheckStreamConfig.
	Checks streams.CheckStreamConfig

	// Mode defaults to Restore.
	Mode Mode
	// FromSeq is the first stream sequence read. Defaults to 1; must stay
	// unset (or 1) when Since is set.
	FromSeq uint64
	// Since, when set, starts at the first event stored at or after it.
	Since time.Time
	// Until, when set, ends at the last event stored at or before it;
	// otherwise the range ends at the stream's last sequence when Run
	// starts, so a replay of a live stream ends.
	Until time.Time
	// BatchSize is the most events read and written at once. Defaults to
	// 500; at most 10000.
	BatchSize int

	// Swap, with a rebuild, replaces the live tables with the rebuilt
	// ones, under an ACCESS EXCLUSIVE lock (workers wait meanwhile), held
	// for a scan of attempts (progress) or of the checks stored since the
	// rebuild began (checks).
	Swap bool
	// KeepShadow, with a rebuild and without Swap, keeps the rebuilt
	// tables (progress_rebuild; checks_rebuild and
	// exercise_passes_rebuild) for inspection. Defaults to dropping them.
	KeepShadow bool
	// DiffRows is how many differing rows Result.Diff or Result.Checks
	// lists, with a rebuild. Defaults to 0: only their counts.
	DiffRows int
	// LockTimeout bounds the wait for the locks on the live tables, with
	// Swap. Defaults to 30s.
	LockTimeout time.Duration

	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Progress, when set, hears how many events were read of about how
	// many the range holds: once before the first read (0, estimate), then
	// after each batch. It is called on Run's goroutine, so it must not
	// block.
	Progress func(done, total uint64)
}

// validate fills the defaults and reports the first field out of range.
func (c *Config) validate() error {
	if c.Mode == "" {
		c.Mode = Restore
	}
	if c.FromSeq == 0 {
		c.FromSeq = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Store == nil:
		return errors.New("replay: Config.Store is required")
	case c.JetStream == nil:
		return errors.New("replay: Config.JetStream is required")
	case c.Mode != Restore && c.Mode != DryRun && !c.Mode.rebuilds() && c.Mode != RestoreExams:
		return fmt.Errorf("replay: Config.Mode %q is none of %q, %q, %q, %q and %q", c.Mode, Restore, DryRun, RebuildProgress, RebuildChecks, RestoreExams)
	case c.Mode == RebuildChecks && (c.FromSeq > 1 || !c.Since.IsZero() || !c.Until.IsZero()):
		return errors.New("replay: Mode \"rebuild checks\" reads its whole stream: Config.FromSeq, Since and Until must stay unset")
	case c.FromSeq > 1 && !c.Since.IsZero():
		return errors.New("replay: Config.FromSeq and Config.Since are exclusive")
	case !c.Since.IsZero() && !c.Until.IsZero() && c.Until.Before(c.Since):
		return fmt.Errorf("replay: Config.Until %s is before Config.Since %s", c.Until.Format(time.RFC3339Nano), c.Since.Format(time.RFC3339Nano))
	case c.BatchSize < 1 || c.BatchSize > MaxBatchSize:
		return fmt.Errorf("replay: Config.BatchSize must be between 1 and %d, not %d", MaxBatchSize, c.BatchSize)
	case c.Swap && !c.Mode.rebuilds():
		return fmt.Errorf("replay: Config.Swap needs Mode %q or %q", RebuildProgress, RebuildChecks)
	case c.KeepShadow && !c.Mode.rebuilds():
		return fmt.Errorf("replay: Config.KeepShadow needs Mode %q or %q", RebuildProgress, RebuildChecks)
	case c.KeepShadow && c.Swap:
		return errors.New("replay: Config.KeepShadow and Config.Swap are exclusive: after a swap the shadow is the live table")
	case c.DiffRows < 0:
		return errors.New("replay: Config.DiffRows must not be negative")
	case c.LockTimeout < 0:
		return errors.New("replay: Config.LockTimeout must be positive")
	}
	if err := c.Stream.Validate(); err != nil {
		return fmt.Errorf("replay: Config.Stream: %w", err)
	}
	if err := c.ExamStream.Validate(); err != nil {
		return fmt.Errorf("replay: Config.ExamStream: %w", err)
	}
	if err := c.Checks.Validate(); err != nil {
		return fmt.Errorf("replay: Config.Checks: %w", err)
	}
	return nil
}

// rebuilds reports whether m rebuilds a projection into shadow tables.
func (m Mode) rebuilds() bool { return m == RebuildProgress || m == RebuildChecks }

// Result is what a replay did. Counts that do not apply to its Mode are 0.
type Result struct {
	// Mode is what the replay did; empty when Run failed before it began
	// to read (a bad Config, no stream, another rebuild running).
	Mode Mode
	// EndSeq is the stream's last sequence when the replay began: the end
	// of the range, unless Until ends it earlier.
	EndSeq uint64
	// Estimate is about how many events the range holds: exact for a range
	// of sequences, an upper bound for a range of time.
	Estimate uint64

	// Read counts the events read.
	Read int64
	// FirstSeq is the sequence of the first event read, 0 when none was.
	FirstSeq uint64
	// LastSeq is the last sequence settled: every event read up to it was
	// stored, found stored, set aside or counted. 0 when none was.
	LastSeq uint64

	// Stored counts new attempt rows (DryRun: rows a restore would store;
	// RestoreExams: session, answer and final rows inserted or changed).
	Stored int64
	// AlreadyPresent counts attempts stored before (Restore, DryRun).
	AlreadyPresent int64
	// Poison counts events set aside (Restore: their failed tombstones
	// stored where they decode; DryRun: events a restore would set aside;
	// a rebuild: undecodable events, skipped).
	Poison int64

	// Counted counts the events counted into the rebuilt progress: those
	// of attempts stored as recorded (RebuildProgress); or the check rows
	// the events inserted or advanced, the events of one check in one
	// batch folded as one (RebuildChecks).
	Counted int64
	// NotCounted counts the decoded events not counted: their attempt is
	// not stored as recorded (yet), or was counted already
	// (RebuildProgress); or the decoded events less Counted (RebuildChecks).
	NotCounted int64
	// FromTable counts what the rebuild took from the live tables rather
	// than from an event, its event being outside the range or stored
	// after it was read: recorded attempts counted from the attempts table
	// (RebuildProgress), live checks rows folded in (RebuildChecks).
	FromTable int64
	// Diff is how the live progress table differs from the rebuilt one,
	// compared before any swap; nil until the comparison is done
	// (RebuildProgress).
	Diff *store.ProgressDiff
	// Checks is how the live checks tables differ from the rebuilt ones,
	// as Diff (RebuildChecks).
	Checks *store.CheckDiff
	// Swapped reports whether the rebuilt tables replaced the live ones.
	Swapped bool
	// CountedUnderLock counts what workers stored after the comparison,
	// folded in by the swap under its lock: attempts (RebuildProgress) or
	// checks rows (RebuildChecks).
	CountedUnderLock int64

	// Duration is how long reading (and for a rebuild, comparing) took.
	Duration time.Duration
	// SwapDuration is how long the swap took, its wait for the lock included.
	SwapDuration time.Duration

	// ResumeSeq, after ErrInterrupted, is the sequence to go on from:
	// every event before it is settled. 0 otherwise.
	ResumeSeq uint64
}

// Rate returns the events read per second, 0 before any time passed.
func (r Result) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Read) / r.Duration.Seconds()
}

// ErrInterrupted means ctx ended before the replay did. Whatever was
// settled stays settled (Result.ResumeSeq says where to go on), the batch
// in hand was rolled back, and a rebuild left the live table untouched.
var ErrInterrupted = errors.New("replay: interrupted")

// retryPolicy paces the retries of a rebuild's statements while the
// database is unreachable or restarting.
var retryPolicy = retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// Run replays the range of the stream cfg selects, as cfg.Mode says, and
// returns what it did. It returns an error naming the field of a bad
// Config, eventlog.ErrNoStream, store.ErrRebuildRunning, an error wrapping
// ErrInterrupted when ctx ends first, or the error that stopped it; the
// Result then holds what was done until then. Transient database failures
// are retried until ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	r := &runner{cfg: cfg, log: cfg.Logger}
	err := r.run(ctx)
	return r.res, r.interrupted(ctx, err)
}

// runner is one run of Run.
type runner struct {
	cfg   Config
	log   *slog.Logger
	res   Result
	start time.Time // of the first read
}

func (r *runner) run(ctx context.Context) (err error) {
	rng := eventlog.Range{FromSeq: r.cfg.FromSeq, Since: r.cfg.Since, Until: r.cfg.Until, BatchSize: r.cfg.BatchSize}
	var rd *eventlog.Reader
	stream := r.cfg.Stream.Name
	switch r.cfg.Mode {
	case RestoreExams:
		stream = r.cfg.ExamStream.Name
		rd, err = eventlog.OpenExamReader(ctx, r.cfg.JetStream, r.cfg.ExamStream, rng)
	case RebuildChecks:
		stream = r.cfg.Checks.Name
		rd, err = eventlog.OpenCheckReader(ctx, r.cfg.JetStream, r.cfg.Checks, rng)
	default:
		rd, err = eventlog.OpenReader(ctx, r.cfg.JetStream, r.cfg.Stream, rng)
	}
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		rd.Close(cctx)
	}()
	var sh shadow
	var wr batchWriter
	switch r.cfg.Mode {
	case RestoreExams:
		wr = worker.NewExamWriter(r.cfg.Store, worker.ExamWriterConfig{Logger: r.log})
	case RebuildProgress, RebuildChecks:
		if sh, err = r.startShadow(ctx); err != nil {
			return err
		}
		defer func() {
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			if err := sh.close(cctx, r.cfg.KeepShadow); err != nil {
				r.log.Warn("replay: shadow tables not dropped", "err", err)
			}
		}()
	default:
		wr = worker.NewWriter(r.cfg.Store, worker.WriterConfig{Tombstones: true, DryRun: r.cfg.Mode == DryRun, Logger: r.log})
	}
	r.res.Mode, r.res.EndSeq, r.res.Estimate = r.cfg.Mode, rd.Last(), rd.Estimate()
	r.log.Info("replay: started", "mode", r.cfg.Mode, "stream", stream,
		"from_seq", r.cfg.FromSeq, "since", r.cfg.Since, "until", r.cfg.Until,
		"last_seq", rd.Last(), "estimate", rd.Estimate())

	r.start = time.Now()
	defer func() { r.done(err) }()
	r.progress()
	for {
		msgs, nerr := rd.Next(ctx)
		if errors.Is(nerr, io.EOF) {
			break
		}
		if nerr != nil {
			return nerr
		}
		if r.res.FirstSeq == 0 {
			r.res.FirstSeq = msgs[0].Seq
		}
		r.res.Read += int64(len(msgs))
		if sh != nil {
			err = sh.fold(ctx, msgs)
			r.res.LastSeq = msgs[len(msgs)-1].Seq
		} else {
			err = r.write(ctx, wr, msgs)
		}
		r.progress()
		if err != nil {
			return err
		}
	}
	if sh == nil {
		return nil
	}
	if err = r.retry(ctx, "diff", func() error { return sh.diff(ctx) }); err != nil {
		return err
	}
	if r.cfg.Swap {
		err = r.swap(ctx, sh)
	}
	return err
}

func (r *runner) progress() {
	if r.cfg.Progress != nil {
		r.cfg.Progress(uint64(r.res.Read), r.res.Estimate)
	}
}

// done records how long the replay took and logs what it did.
func (r *runner) done(err error) {
	if r.res.Duration == 0 {
		r.res.Duration = time.Since(r.start)
	}
	res := r.res
	r.log.Info("replay: done", "mode", res.Mode, "read", res.Read, "stored", res.Stored, "already_present", res.AlreadyPresent,
		"poison", res.Poison, "counted", res.Counted, "not_counted", res.NotCounted, "from_table", res.FromTable,
		"first_seq", res.FirstSeq, "last_seq", res.LastSeq, "duration", res.Duration, "rate_per_s", int64(res.Rate()),
		"swapped", res.Swapped, "err", err)
}

// interrupted turns a ctx that ended into ErrInterrupted, saying what is
// left to do.
func (r *runner) interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	var resume resumeError
	switch {
	case r.cfg.Mode.rebuilds():
		return fmt.Errorf("%w; the live tables are untouched", ErrInterrupted)
	case errors.As(err, &resume):
		r.res.ResumeSeq = resume.seq
	case r.res.LastSeq > 0:
		r.res.ResumeSeq = r.res.LastSeq + 1
	default:
		return fmt.Errorf("%w before any event was settled", ErrInterrupted)
	}
	return fmt.Errorf("%w; events before seq %d are settled", ErrInterrupted, r.res.ResumeSeq)
}

// resumeError is a batch left unsettled from seq because ctx ended.
type resumeError struct{ seq uint64 }

func (e resumeError) Error() string { return fmt.Sprintf("batch unsettled from seq %d", e.seq) }

// batchWriter is the workers' writer a replay stores through:
// worker.Writer (attempts) or worker.ExamWriter (sessions).
type batchWriter interface {
	Write(ctx context.Context, recs []worker.Record) worker.Outcome
}

// write stores (or, in a dry run, tries) one batch through the workers' writer.
func (r *runner) write(ctx context.Context, wr batchWriter, msgs []eventlog.StreamMsg) error {
	recs := make([]worker.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = worker.Record{Seq: m.Seq, Subject: m.Subject, Data: m.Data}
	}
	out := wr.Write(ctx, recs)
	r.res.Stored += out.Stored
	r.res.AlreadyPresent += out.Duplicates
	r.res.Poison += int64(len(out.Poison))
	if len(out.Unsettled) > 0 {
		first := msgs[out.Unsettled[0]].Seq
		for _, i := range out.Unsettled {
			first = min(first, msgs[i].Seq)
		}
		r.res.LastSeq = first - 1
		return resumeError{seq: first}
	}
	r.res.LastSeq = msgs[len(msgs)-1].Seq
	return nil
}

// swap replaces the live tables with the shadow. The replay's Duration
// ends where the swap begins.
func (r *runner) swap(ctx context.Context, sh shadow) error {
	start := time.Now()
	r.res.Duration = start.Sub(r.start)
	err := r.retry(ctx, "swap", func() error { return sh.swap(ctx) })
	r.res.SwapDuration = time.Since(start)
	if err != nil {
		return err
	}
	r.res.Swapped = true
	r.log.Info("replay: rebuilt tables swapped", "mode", r.cfg.Mode, "counted_under_lock", r.res.CountedUnderLock, "duration", r.res.SwapDuration)
	return nil
}

// retry runs op until it succeeds, fails for good, or ctx ends: a
// database that is unreachable or restarting is waited for.
func (r *runner) retry(ctx context.Context, what string, op func() error) error {
	return retry.Do(ctx, retryPolicy, store.IsTransient, func(err error, next time.Duration) {
		r.log.Warn("replay: "+what+" failed, retrying", "err", err, "retry_in", next)
	}, op)
}

// cleanupContext outlives ctx's cancellation, briefly, for cleaning up
// after an interrupted replay.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}
