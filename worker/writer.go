package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
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
	DeadLetters *events.DeadLetters
	// Tombstones stores every poison record that decodes as a failed
	// attempt, so that it never silently disappears after its 202.
	Tombstones bool
	// DryRun writes each batch in a transaction that is rolled back, and
	// neither dead-letters nor tombstones: the Outcome says what Write
	// would have done, and nothing is written.
	DryRun bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// NewWriter returns a Writer on st.
func NewWriter(st *store.Store, cfg WriterConfig) *Writer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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
}

// Write stores records as one transaction (or, when PostgreSQL refuses
// some, as several, to isolate them). Transient failures are retried with
// backoff until ctx ends. It never returns before every record is settled
// or ctx has ended.
func (w *Writer) Write(ctx context.Context, recs []Record) Outcome {
	var out Outcome
	items := make([]item, 0, len(recs))
	for i, r := range recs {
		it, err := toItem(i, r)
		if err != nil {
			w.setAside(ctx, &out, item{index: i, rec: r}, err)
			continue
		}
		items = append(items, it)
	}
	w.write(ctx, items, &out)
	return out
}

func (w *Writer) write(ctx context.Context, items []item, out *Outcome) {
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
		w.setAside(ctx, out, items[0], err)
		return
	}
	half := len(items) / 2
	w.write(ctx, items[:half], out)
	w.write(ctx, items[half:], out)
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
// stored as a failed tombstone. It is settled only once both are done.
func (w *Writer) setAside(ctx context.Context, out *Outcome, it item, reason error) {
	w.log.Error("worker: poison message", "stream_seq", it.rec.Seq, "subject", it.rec.Subject, "err", reason)
	if w.cfg.DryRun {
		out.Poison = append(out.Poison, it.index)
		return
	}
	if dl := w.cfg.DeadLetters; dl != nil {
		err := w.retry(ctx, "dead-letter", func() error {
			return dl.Put(ctx, events.DeadLetter{
				OriginalSeq: it.rec.Seq, OriginalSubject: it.rec.Subject, Reason: reason.Error(), Data: it.rec.Data,
			})
		})
		if err != nil {
			out.Unsettled = append(out.Unsettled, it.index)
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
