package worker

import (
	"context"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
)

// CheckWriter is the code-checks family's BatchWriter: it folds check
// events (requested, started, completed, in any order and any number of
// times) into the checks projection and the exercises passed, one
// transaction per batch, splitting it to isolate what PostgreSQL refuses.
type CheckWriter struct {
	// Projector, when set, adds the checks and passes a batch committed
	// to the read model before the batch is acknowledged.
	Projector *Projector

	store      *store.Store
	log        *slog.Logger
	maxBackoff time.Duration
}

// NewCheckWriter returns a CheckWriter on st.
func NewCheckWriter(st *store.Store, log *slog.Logger) *CheckWriter {
	if log == nil {
		log = slog.Default()
	}
	return &CheckWriter{store: st, log: log, maxBackoff: DefaultMaxBackoff}
}

type checkItem struct {
	index int
	row   store.Check
}

// Write stores recs; Outcome.Stored counts rows inserted or advanced,
// Duplicates events that changed nothing, Poison records set aside
// (undecodable, or refused by PostgreSQL as data), logged and never stored.
func (w *CheckWriter) Write(ctx context.Context, recs []Record) Outcome {
	var out Outcome
	items := make([]checkItem, 0, len(recs))
	for i, r := range recs {
		e, err := events.DecodeCheckAt(r.Subject, r.Data)
		if err != nil {
			w.log.Error("worker: poison check event", "stream_seq", r.Seq, "subject", r.Subject, "err", err)
			out.Poison = append(out.Poison, i)
			continue
		}
		items = append(items, checkItem{index: i, row: CheckRow(r.Seq, e)})
	}
	w.write(ctx, items, &out)
	return out
}

func (w *CheckWriter) write(ctx context.Context, items []checkItem, out *Outcome) {
	if len(items) == 0 {
		return
	}
	rows := make([]store.Check, len(items))
	for i, it := range items {
		rows[i] = it.row
	}
	var res store.CheckWriteResult
	err := retry.Do(ctx, retry.Policy{Max: w.maxBackoff}, func(err error) bool { return !store.IsDataError(err) },
		func(err error, d time.Duration) {
			w.log.Warn("worker: check write failed, retrying", "err", err, "retry_in", d)
		}, func() (err error) {
			res, err = w.store.WriteChecks(ctx, rows)
			return err
		})
	switch {
	case err == nil:
		if w.Projector != nil && w.project(ctx, rows, items) != nil {
			// Stored, not yet in the read model: delivered again, stored
			// again as nothing new, and projected then.
			for _, it := range items {
				out.Unsettled = append(out.Unsettled, it.index)
			}
			return
		}
		out.Stored += res.Changed
		out.Duplicates += int64(len(items)) - res.Changed
		return
	case ctx.Err() != nil:
		for _, it := range items {
			out.Unsettled = append(out.Unsettled, it.index)
		}
		return
	case len(items) == 1:
		w.log.Error("worker: check event refused by the database; set aside", "check_id", items[0].row.ID, "err", err)
		out.Poison = append(out.Poison, items[0].index)
		return
	}
	half := len(items) / 2
	w.write(ctx, items[:half], out)
	w.write(ctx, items[half:], out)
}

// project folds the committed rows into the read model: the student's
// checks, then the exercises they pass.
func (w *CheckWriter) project(ctx context.Context, rows []store.Check, items []checkItem) error {
	if err := w.Projector.ProjectChecks(ctx, rows); err != nil {
		return err
	}
	return w.Projector.ProjectPasses(ctx, passes(items))
}

// passes are the exercises items pass.
func passes(items []checkItem) []StudentPass {
	var out []StudentPass
	for _, it := range items {
		if r := it.row; r.Status == store.CheckPassed {
			out = append(out, StudentPass{Student: r.StudentID, Pass: readmodel.Pass{CourseID: r.CourseID, ExerciseID: r.ExerciseID}})
		}
	}
	return out
}

// CheckRow returns the row a check event read at stream sequence seq becomes.
func CheckRow(seq uint64, e events.CheckEvent) store.Check {
	r := e.Ref()
	row := store.Check{
		ID: r.CheckID, StudentID: r.StudentID, ExerciseID: r.ExerciseID, CourseID: r.CourseID,
		Language: r.Language, SourceHash: hex.EncodeToString(r.SourceHash), IdempotencyKey: r.IdempotencyKey,
		Status: store.CheckQueued, SubmittedAt: r.SubmittedAt, StreamSeq: seq,
	}
	switch {
	case e.Started != nil:
		row.Status, row.StartedAt = store.CheckRunning, &e.Started.StartedAt
	case e.Completed != nil:
		c := e.Completed
		row.Status, row.StartedAt, row.FinishedAt, row.Output = c.Status, c.StartedAt, &c.FinishedAt, c.Output
		for _, t := range c.Tests {
			row.Tests = append(row.Tests, store.CheckTest(t))
		}
	}
	return row
}
