package worker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// Record is one message of the attempts stream.
type Record struct {
	Seq     uint64
	Subject string
	Data    []byte
}

// Outcome says what Write did with each record of a batch.
type Outcome struct {
	// Stored counts new rows; Duplicates counts records stored before.
	Stored, Duplicates int64
	// Poison lists the indexes of records that can never be stored; they
	// were dead-lettered (when the Writer has a dead-letter stream).
	Poison []int
	// Unsettled lists the indexes of records neither stored nor set aside,
	// because ctx ended first: their transaction rolled back.
	Unsettled []int
	// Held lists the indexes of poison records whose dead-letter copy could
	// not be written within DeadLetterTimeout (the dead-letter stream full
	// or missing): they must stay unacknowledged, never terminated, to be
	// set aside when they come back.
	Held []int
	// Newer lists the indexes of records of a schema version newer than
	// this build knows (written by a newer quizstream during a rolling
	// deploy): not poison, for a newer worker to store.
	Newer []int
}

// Writer turns records into rows: decode, write the batch in one
// transaction, split it to isolate what PostgreSQL refuses. Workers and
// replay share it, so a replay stores exactly what a worker would.
type Writer struct {
	store      *store.Store
	cfg        WriterConfig
	log        *slog.Logger
	maxBackoff time.Duration
	metrics    *metrics
}

// WriterConfig says what a Writer does with poison.
type WriterConfig struct {
	// DeadLetters, when set, receives a copy of every poison record with
	// its reason. Defaults to none: poison is only reported.
	DeadLetters *streams.DeadLetters
	// Tombstones stores every poison record that decodes as a failed
	// attempt, so that it never silently disappears after its 202.
	Tombstones bool
	// DryRun writes each batch in a transaction that is rolled back, and
	// neither dead-letters nor tombstones: the Outcome says what Write
	// would have done, and nothing is written.
	DryRun bool
	// DeadLetterTimeout bounds the retries of one dead-letter write; past
	// it the record is Held. Defaults to 10s.
	DeadLetterTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// NewWriter returns a Writer on st.
func NewWriter(st *store.Store, cfg WriterConfig) *Writer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DeadLetterTimeout <= 0 {
		cfg.DeadLetterTimeout = DefaultDeadLetterTimeout
	}
	m, _ := newMetrics(nil)
	return &Writer{store: st, cfg: cfg, log: cfg.Logger, maxBackoff: DefaultMaxBackoff, metrics: m}
}

// item is one record and, when it decodes, its row.
type item struct {
	index int
	rec   Record
	row   store.Attempt
	event *events.AttemptSubmitted
	err   error // why it does not decode
}

// Write stores records as one transaction (or, when PostgreSQL refuses
// some, as several, to isolate them). Transient failures are retried with
// backoff until ctx ends. It never returns before every record is settled
// or ctx has ended.
func (w *Writer) Write(ctx context.Context, recs []Record) Outcome {
	p := &pass{}
	items := make([]item, 0, len(recs))
	var undecodable []item
	for i, r := range recs {
		it, err := toItem(i, r)
		switch {
		case err != nil && events.NewerSchema(r.Data):
			p.out.Newer = append(p.out.Newer, i)
			w.log.Warn("worker: event of a newer schema version; handed back for a newer worker",
				"stream_seq", r.Seq, "subject", r.Subject, "err", err)
		case err != nil:
			it.index, it.rec, it.err = i, r, err
			undecodable = append(undecodable, it)
		default:
			items = append(items, it)
		}
	}
	// The batch's good records first: what cannot be set aside now must
	// not keep them from being stored.
	w.write(ctx, items, p)
	for _, it := range undecodable {
		w.setAside(ctx, p, it, it.err)
	}
	return p.out
}

// pass is one Write: its outcome so far, and whether the dead-letter
// stream refused, after which the rest of the batch's poison is held
// without trying again.
type pass struct {
	out             Outcome
	deadLettersDown bool
}

func (w *Writer) write(ctx context.Context, items []item, p *pass) {
	out := &p.out
	if len(items) == 0 {
		return
	}
	rows := make([]store.Attempt, len(items))
	for i, it := range items {
		rows[i] = it.row
	}
	var res store.InsertResult
	err := w.retry(ctx, "write", func() error {
		var err error
		if w.cfg.DryRun {
			res, err = w.store.TryInsertAttempts(ctx, rows)
		} else {
			res, err = w.store.InsertAttempts(ctx, rows)
		}
		return err
	})
	switch {
	case err == nil:
		out.Stored += res.Inserted
		out.Duplicates += int64(len(items)) - res.Inserted
		return
	case ctx.Err() != nil:
		for _, it := range items {
			out.Unsettled = append(out.Unsettled, it.index)
		}
		return
	case len(items) == 1:
		w.setAside(ctx, p, items[0], err)
		return
	}
	half := len(items) / 2
	w.write(ctx, items[:half], p)
	w.write(ctx, items[half:], p)
}

// retry runs op until it succeeds, fails with a data error, or ctx ends.
func (w *Writer) retry(ctx context.Context, what string, op func() error) error {
	return retry.Do(ctx, retry.Policy{Max: w.maxBackoff}, func(err error) bool { return !store.IsDataError(err) },
		func(err error, d time.Duration) {
			w.metrics.retries.Inc()
			w.log.Warn("worker: "+what+" failed, retrying", "err", err, "retry_in", d)
		}, op)
}

// setAside handles a record that can never be stored, as the config says:
// copied to the dead-letter stream with the reason, and, when it decodes,
// stored as a failed tombstone. It is settled only once both are done. A
// dead-letter copy that cannot be written within DeadLetterTimeout leaves
// the record Held (unacknowledged, never terminated): the worker goes on
// with other batches, and the record comes back after AckWait.
func (w *Writer) setAside(ctx context.Context, p *pass, it item, reason error) {
	out := &p.out
	w.log.Error("worker: poison message", "stream_seq", it.rec.Seq, "subject", it.rec.Subject, "err", reason)
	if w.cfg.DryRun {
		out.Poison = append(out.Poison, it.index)
		return
	}
	if dl := w.cfg.DeadLetters; dl != nil {
		if p.deadLettersDown {
			out.Held = append(out.Held, it.index)
			w.metrics.deadLetterFailures.Inc()
			return
		}
		dctx, cancel := context.WithTimeout(ctx, w.cfg.DeadLetterTimeout)
		err := retry.Do(dctx, retry.Policy{Max: w.maxBackoff, Elapsed: w.cfg.DeadLetterTimeout}, deadLetterRetryable,
			func(err error, d time.Duration) {
				w.log.Warn("worker: dead-letter write failed, retrying", "stream_seq", it.rec.Seq, "err", err, "retry_in", d)
			}, func() error {
				return dl.Put(dctx, streams.DeadLetter{
					OriginalSeq: it.rec.Seq, OriginalSubject: it.rec.Subject, Reason: reason.Error(), Data: it.rec.Data,
				})
			})
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			out.Unsettled = append(out.Unsettled, it.index)
			return
		default:
			p.deadLettersDown = true
			out.Held = append(out.Held, it.index)
			w.metrics.deadLetterFailures.Inc()
			w.log.Error("worker: dead letter not written; the poison message stays unacknowledged in the stream, holding the ack floor (quizstream stream status)",
				"stream_seq", it.rec.Seq, "subject", it.rec.Subject, "full", eventlog.IsStreamFull(err), "err", err)
			return
		}
	}
	if w.cfg.Tombstones && it.event != nil {
		tomb := tombstone(it)
		err := w.retry(ctx, "tombstone", func() error {
			_, err := w.store.InsertAttempts(ctx, []store.Attempt{tomb})
			return err
		})
		switch {
		case ctx.Err() != nil:
			out.Unsettled = append(out.Unsettled, it.index)
			return
		case err != nil:
			w.log.Error("worker: tombstone refused too; the attempt is only in the dead-letter stream",
				"attempt_id", tomb.ID, "err", err)
		}
	}
	out.Poison = append(out.Poison, it.index)
}

// deadLetterRetryable says which failures of a dead-letter write are worth
// trying again soon: not a refusal of the server (the stream full, say),
// nor a stream that does not exist, which last until an operator acts.
func deadLetterRetryable(err error) bool {
	var apiErr *jetstream.APIError
	return !errors.As(err, &apiErr) && !errors.Is(err, jetstream.ErrNoStreamResponse)
}

// tombstone is the row of an attempt that could not be stored: its ids and
// its score as the client was told, without the answers PostgreSQL refused.
func tombstone(it item) store.Attempt {
	t := it.row
	t.Status = store.StatusFailed
	t.Answers = []byte("[]")
	t.MaxScore = max(t.MaxScore, 0)
	t.Score = min(max(t.Score, 0), t.MaxScore)
	return t
}

// toItem decodes a record into the row it becomes.
func toItem(i int, r Record) (item, error) {
	e, err := events.DecodeAt(r.Subject, r.Data)
	if err != nil {
		return item{}, err
	}
	return item{index: i, rec: r, event: &e, row: Row(r.Seq, e)}, nil
}

// Row returns the row an event read at stream sequence seq becomes: the
// one mapping from an event to an attempt, which workers store and replay
// restores or counts. It cannot fail: an event holds only what its row
// holds, and its answers (strings) always encode.
func Row(seq uint64, e events.AttemptSubmitted) store.Attempt {
	// json.Marshal of strings never fails (invalid UTF-8 becomes U+FFFD);
	// were it to, the empty answers would be refused as poison.
	answers, _ := json.Marshal(e.Answers)
	return store.Attempt{
		ID:             e.AttemptID,
		StudentID:      e.StudentID,
		QuizID:         e.QuizID,
		CourseID:       e.CourseID,
		IdempotencyKey: e.IdempotencyKey,
		Answers:        answers,
		AnswersHash:    e.AnswersHash,
		Score:          e.Score,
		MaxScore:       e.MaxScore,
		Status:         store.StatusRecorded,
		SubmittedAt:    e.SubmittedAt,
		StreamSeq:      seq,
	}
}
