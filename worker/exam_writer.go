package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
)

// AttemptPublisher publishes the attempt a finalized session becomes
// (eventlog.Log, eventlog.Batcher).
type AttemptPublisher interface {
	// PublishAttempt returns once the attempts stream holds the attempt
	// (or already held one with its id); an error means the outcome is unknown.
	PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (eventlog.Published, error)
	// Attempt returns an attempt's event, or eventlog.ErrNotInLog.
	Attempt(ctx context.Context, student, attempt uuid.UUID) (eventlog.Published, error)
}

// ExamWriterConfig configures an ExamWriter.
type ExamWriterConfig struct {
	// Attempts, when set, receives the attempt of every finalized session
	// written, before the batch counts as settled: whoever finalized the
	// session published it already, but may have died before. Replays
	// leave it unset (the attempts stream is replayed on its own).
	Attempts AttemptPublisher
	// Projector, when set, folds the sessions of every batch committed
	// into the read model before the batch counts as settled.
	Projector *Projector
	// DryRun writes each batch in a transaction that is rolled back and
	// publishes nothing.
	DryRun bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// ExamWriter turns session events into rows of the sessions projection
// (exam_sessions, exam_answers, exam_finals): decode, write the batch in one
// transaction, split it to isolate what PostgreSQL refuses. The exam
// workers and replay share it. Events may come in any order and any
// number of times: the highest seq of each question wins.
type ExamWriter struct {
	store      *store.Store
	cfg        ExamWriterConfig
	log        *slog.Logger
	maxBackoff time.Duration
}

// NewExamWriter returns an ExamWriter on st.
func NewExamWriter(st *store.Store, cfg ExamWriterConfig) *ExamWriter {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &ExamWriter{store: st, cfg: cfg, log: cfg.Logger, maxBackoff: DefaultMaxBackoff}
}

// examItem is one record and the event it decodes to.
type examItem struct {
	index int
	rec   Record
	event events.ExamEvent
}

// Write stores records as one transaction (or, when PostgreSQL refuses
// some, as several, to isolate them), then publishes the attempts of the
// finalized sessions among them. Transient failures are retried with
// backoff until ctx ends. Outcome.Stored counts the rows inserted or
// changed; Duplicates the events that changed nothing (stored before, or a
// save superseded by a higher seq); Poison the records set aside
// (undecodable, or refused by PostgreSQL as data), which are logged and
// never stored.
func (w *ExamWriter) Write(ctx context.Context, recs []Record) Outcome {
	var out Outcome
	items := make([]examItem, 0, len(recs))
	for i, r := range recs {
		e, err := events.DecodeExamAt(r.Subject, r.Data)
		if err != nil {
			w.log.Error("worker: poison exam event", "stream_seq", r.Seq, "subject", r.Subject, "err", err)
			out.Poison = append(out.Poison, i)
			continue
		}
		items = append(items, examItem{index: i, rec: r, event: e})
	}
	stored := w.write(ctx, items, &out)
	if w.project(ctx, stored, &out) {
		w.publishAttempts(ctx, stored, &out)
	}
	return out
}

// project folds the committed items into the read model; when it cannot
// before ctx ends they are left unsettled (and it returns false),
// delivered again, stored again as nothing new, and folded then.
func (w *ExamWriter) project(ctx context.Context, items []examItem, out *Outcome) bool {
	if w.cfg.Projector == nil || w.cfg.DryRun || len(items) == 0 {
		return true
	}
	evs := make([]events.ExamEvent, len(items))
	for i, it := range items {
		evs[i] = it.event
	}
	if w.cfg.Projector.ProjectSessions(ctx, evs) == nil {
		return true
	}
	for _, it := range items {
		out.Unsettled = append(out.Unsettled, it.index)
	}
	return false
}

// write stores items and returns those in a committed transaction.
func (w *ExamWriter) write(ctx context.Context, items []examItem, out *Outcome) []examItem {
	if len(items) == 0 {
		return nil
	}
	batch := examBatch(items)
	var res store.ExamWriteResult
	err := retry.Do(ctx, retry.Policy{Max: w.maxBackoff}, func(err error) bool { return !store.IsDataError(err) },
		func(err error, d time.Duration) {
			w.log.Warn("worker: exam write failed, retrying", "err", err, "retry_in", d)
		}, func() (err error) {
			if w.cfg.DryRun {
				res, err = w.store.TryWriteExamEvents(ctx, batch)
			} else {
				res, err = w.store.WriteExamEvents(ctx, batch)
			}
			return err
		})
	switch {
	case err == nil:
		out.Stored += res.Changed()
		out.Duplicates += int64(len(items)) - res.Changed()
		return items
	case ctx.Err() != nil:
		for _, it := range items {
			out.Unsettled = append(out.Unsettled, it.index)
		}
		return nil
	case len(items) == 1:
		w.log.Error("worker: exam event refused by the database; set aside", "stream_seq", items[0].rec.Seq,
			"subject", items[0].rec.Subject, "err", err)
		out.Poison = append(out.Poison, items[0].index)
		return nil
	}
	half := len(items) / 2
	return append(w.write(ctx, items[:half], out), w.write(ctx, items[half:], out)...)
}

// publishAttempts publishes the attempt of every finalized session among
// items; one that could not be published before ctx ended leaves its
// record unsettled, to be delivered again.
func (w *ExamWriter) publishAttempts(ctx context.Context, items []examItem, out *Outcome) {
	if w.cfg.Attempts == nil || w.cfg.DryRun {
		return
	}
	for _, it := range items {
		f := it.event.Finalized
		if f == nil {
			continue
		}
		err := retry.Do(ctx, retry.Policy{Max: w.maxBackoff}, retry.Always, func(err error, d time.Duration) {
			w.log.Warn("worker: publishing a finalized session's attempt failed, retrying",
				"session_id", f.SessionID, "err", err, "retry_in", d)
		}, func() error {
			// Nearly always published already, by whoever finalized: a
			// read costs less than a duplicate publish.
			_, err := w.cfg.Attempts.Attempt(ctx, f.StudentID, f.AttemptID)
			if !errors.Is(err, eventlog.ErrNotInLog) {
				return err
			}
			_, err = w.cfg.Attempts.PublishAttempt(ctx, f.Attempt())
			return err
		})
		if err != nil {
			out.Unsettled = append(out.Unsettled, it.index)
		}
	}
}

// examBatch maps events to the rows they become.
func examBatch(items []examItem) store.ExamBatch {
	var b store.ExamBatch
	for _, it := range items {
		switch e := it.event; {
		case e.Started != nil:
			b.Sessions = append(b.Sessions, ExamSessionRow(it.rec.Seq, *e.Started))
		case e.Saved != nil:
			b.Answers = append(b.Answers, ExamAnswerRow(it.rec.Seq, *e.Saved))
		case e.Finalized != nil:
			b.Finals = append(b.Finals, ExamFinalRow(it.rec.Seq, *e.Finalized))
		}
	}
	return b
}

// ExamSessionRow returns the row an ExamStarted read at stream sequence seq becomes.
func ExamSessionRow(seq uint64, e events.ExamStarted) store.ExamSession {
	return store.ExamSession{
		ID: e.SessionID, StudentID: e.StudentID, QuizID: e.QuizID, CourseID: e.CourseID,
		IdempotencyKey: e.IdempotencyKey, Number: e.Number, StartedAt: e.StartedAt, Deadline: e.Deadline,
		GraceS: e.GraceS, StreamSeq: seq,
	}
}

// ExamAnswerRow returns the row an AnswerSaved read at stream sequence seq becomes.
func ExamAnswerRow(seq uint64, e events.AnswerSaved) store.ExamAnswer {
	return store.ExamAnswer{
		SessionID: e.SessionID, QuestionID: e.QuestionID, ChoiceID: e.ChoiceID,
		Seq: e.Seq, SavedAt: e.SavedAt, StreamSeq: seq,
	}
}

// ExamFinalRow returns the row an ExamFinalized read at stream sequence seq becomes.
func ExamFinalRow(seq uint64, e events.ExamFinalized) store.ExamFinal {
	return store.ExamFinal{SessionID: e.SessionID, By: e.By, AttemptID: e.AttemptID, SubmittedAt: e.SubmittedAt, StreamSeq: seq}
}
