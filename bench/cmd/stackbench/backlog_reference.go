package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

// referenceBacklog reads back the rows the worker stored and writes them
// with store.InsertAttempts (the worker's own statements: COPY into the
// per-connection staging table, INSERT ... ON CONFLICT into attempts and
// the progress upsert from the inserted rows) into the empty tables of a
// freshly migrated database on the same server: once as one transaction
// of every row, then again (tables emptied) in transactions of the
// worker's batch size.
func (b *bench) referenceBacklog(ctx context.Context, dbURL, refDB, refURL string, res *backlogResult) error {
	n := res.Attempts
	b.say("backlog: reading back the %d stored attempts", n)
	rows, err := readAttempts(ctx, dbURL)
	if err != nil {
		return err
	}
	if len(rows) != n {
		return fmt.Errorf("read back %d attempts, not %d", len(rows), n)
	}
	st, err := store.Open(ctx, store.Config{URL: refURL, MaxConns: 2})
	if err != nil {
		return err
	}
	defer st.Close()
	for _, chunk := range []int{0, worker.DefaultBatchSize} {
		run := referenceRun{What: "one COPY into the staging table + one INSERT ... ON CONFLICT (+ progress upsert), one transaction", Chunk: n, Rows: n}
		if chunk > 0 {
			run.What = fmt.Sprintf("the same, in transactions of %d rows (the worker's batch size), one after the other", chunk)
			run.Chunk = chunk
		}
		if _, err := st.Pool().Exec(ctx, "TRUNCATE attempts, progress"); err != nil {
			return err
		}
		if _, err := st.Pool().Exec(ctx, "CHECKPOINT"); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		b.say("backlog: reference: %d rows, %d per transaction", n, run.Chunk)
		t := tiers{db: refDB, pids: map[string]int{}, disk: b.tmp}
		before := t.sample()
		start := time.Now()
		for _, c := range chunks(n, chunk) {
			r, err := st.InsertAttempts(ctx, rows[c[0]:c[1]])
			if err != nil {
				run.Error = err.Error()
				break
			}
			run.Inserted += r.Inserted
			run.ProgressRows += r.ProgressRows
		}
		run.Seconds = time.Since(start).Seconds()
		run.CPU = cpuBetween(before, t.sample())
		if run.Error == "" && run.Inserted != int64(n) {
			run.Error = fmt.Sprintf("inserted %d rows, not %d", run.Inserted, n)
		}
		b.say("backlog: reference: %d rows in %.1fs (%.0f/s) %s", run.Inserted, run.Seconds, float64(run.Inserted)/run.Seconds, run.Error)
		res.Reference = append(res.Reference, run)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// readAttempts returns every attempt of a database in stream order, as
// the worker wrote them.
func readAttempts(ctx context.Context, dbURL string) ([]store.Attempt, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT id, student_id, quiz_id, course_id, coalesce(idempotency_key, ''), answers,
		answers_hash, score, max_score, status, submitted_at, stream_seq FROM attempts ORDER BY stream_seq`)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Attempt, error) {
		var a store.Attempt
		var seq int64
		err := row.Scan(&a.ID, &a.StudentID, &a.QuizID, &a.CourseID, &a.IdempotencyKey, &a.Answers,
			&a.AnswersHash, &a.Score, &a.MaxScore, &a.Status, &a.SubmittedAt, &seq)
		a.StreamSeq = uint64(seq)
		return a, err
	})
}
