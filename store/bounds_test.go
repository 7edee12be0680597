package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

// An attempts write stuck on a lock is cancelled by PostgreSQL after the
// statement timeout, as a transient error, rather than waiting for as long
// as the lock is held; without one it waits.
func TestStatementTimeoutBoundsAStuckWrite(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	ctx := t.Context()
	student, quiz, course := uuid.New(), uuid.New(), uuid.New()
	if _, err := st.InsertAttempts(ctx, []store.Attempt{attempt(student, quiz, course, 1, time.Now())}); err != nil {
		t.Fatal(err)
	}
	// Another transaction holds the student's progress row.
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM progress WHERE student_id = $1 FOR UPDATE`, student); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	bounded, stop := context.WithTimeout(ctx, 5*time.Second) // fails rather than hangs without the timeout
	defer stop()
	_, err = st.WithStatementTimeout(300*time.Millisecond).InsertAttempts(bounded, []store.Attempt{attempt(student, quiz, course, 2, time.Now())})
	took := time.Since(start)
	if err == nil || !store.IsTransient(err) || took > 3*time.Second || bounded.Err() != nil {
		t.Fatalf("a write stuck on a lock with a 300ms statement timeout: %v after %s; want a transient error within it", err, took)
	}

	waitCtx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	_, err = st.InsertAttempts(waitCtx, []store.Attempt{attempt(student, quiz, course, 2, time.Now())})
	if !errors.Is(err, context.DeadlineExceeded) && !store.IsTransient(err) {
		t.Fatalf("without a statement timeout: %v; want it still waiting when the context ended", err)
	}
	if time.Since(start)-took < time.Second {
		t.Fatal("without a statement timeout the write did not wait for the lock")
	}
	if n := storetest.Int(t, st.Pool(), `SELECT count(*) FROM attempts WHERE student_id = $1`, student); n != 1 {
		t.Fatalf("%d attempts stored, want only the first", n)
	}
}

// The content kept outside PostgreSQL decodes to what was loaded.
func TestContentSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	courses, err := st.LoadContent(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data, err := store.EncodeContent(courses)
	if err != nil {
		t.Fatal(err)
	}
	back, err := store.DecodeContent(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, courses) {
		t.Fatal("the content snapshot does not decode to the content loaded")
	}
	if _, err := store.DecodeContent([]byte(`{"format":2,"courses":[]}`)); err == nil {
		t.Fatal("a snapshot of another format decoded")
	}
	t.Logf("content snapshot: %d courses, %d bytes", len(courses), len(data))
}

// BenchmarkGetAttempt is the late-retry lookup an attempt POST with an
// Idempotency-Key makes before publishing: a primary-key lookup of the
// derived attempt id, found (a retry) or not (nearly every POST), in a
// table of 200,000 attempts.
func BenchmarkGetAttempt(b *testing.B) {
	st, _ := storetest.Open(b)
	ctx := b.Context()
	var ids, students []uuid.UUID
	for range 200 {
		batch := make([]store.Attempt, 1000)
		for i := range batch {
			batch[i] = attempt(uuid.New(), uuid.New(), uuid.New(), 1, time.Now())
			ids, students = append(ids, batch[i].ID), append(students, batch[i].StudentID)
		}
		if _, err := st.InsertAttempts(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.Pool().Exec(ctx, `ANALYZE attempts`); err != nil {
		b.Fatal(err)
	}
	b.Run("found", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := st.GetAttempt(ctx, students[i%len(ids)], ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("absent", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.GetAttempt(ctx, uuid.New(), uuid.New()); !errors.Is(err, store.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
}
