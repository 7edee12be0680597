package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

func queryInt(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	return storetest.Int(t, db, sql, args...)
}

var progressDiffers = storetest.ProgressDriftSQL("progress")

func progressEvent(a store.Attempt) store.ProgressEvent {
	return store.ProgressEvent{AttemptID: a.ID, StudentID: a.StudentID, QuizID: a.QuizID, CourseID: a.CourseID, Score: a.Score}
}

// TryInsertAttempts reports what InsertAttempts would do and what
// PostgreSQL would refuse, and writes nothing.
func TestTryInsertAttempts(t *testing.T) {
	t.Parallel()
	st, dbURL := storetest.Open(t)
	db := storetest.DB(t, dbURL)
	ctx := t.Context()
	student, quiz, course := uuid.New(), uuid.New(), uuid.New()
	a, b := attempt(student, quiz, course, 3, time.Now()), attempt(student, quiz, course, 4, time.Now())
	if _, err := st.InsertAttempts(ctx, []store.Attempt{a}); err != nil {
		t.Fatal(err)
	}
	res, err := st.TryInsertAttempts(ctx, []store.Attempt{a, b})
	if err != nil || res.Inserted != 1 || res.ProgressRows != 1 {
		t.Fatalf("TryInsertAttempts: %+v, %v; want 1 new row", res, err)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM attempts`); n != 1 {
		t.Fatalf("%d attempts stored, want the 1 stored before", n)
	}
	if n := queryInt(t, db, `SELECT attempts FROM progress`); n != 1 {
		t.Fatalf("progress counts %d attempts, want 1", n)
	}
	bad := attempt(student, quiz, course, 11, time.Now()) // over max_score
	if _, err := st.TryInsertAttempts(ctx, []store.Attempt{bad}); !store.IsDataError(err) {
		t.Fatalf("TryInsertAttempts of a refused row: %v, want a data error", err)
	}
}

// A rebuild counts an event only if its attempt is recorded, and each
// attempt once; the diff finds every corrupted row; the swap counts what
// was committed after the diff and leaves progress equal to the aggregate
// of the recorded attempts, under its usual index name.
func TestProgressRebuild(t *testing.T) {
	t.Parallel()
	st, dbURL := storetest.Open(t)
	db := storetest.DB(t, dbURL)
	ctx := t.Context()
	var stored []store.Attempt
	quizzes := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	course := uuid.New()
	for i := range 40 {
		stored = append(stored, attempt(uuid.UUID{byte(i % 5), 1}, quizzes[i%3], course, i%11, time.Now()))
	}
	tomb := attempt(uuid.New(), quizzes[0], course, 9, time.Now())
	tomb.Status = store.StatusFailed
	if _, err := st.InsertAttempts(ctx, append(stored, tomb)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE progress SET attempts = attempts + 1 WHERE quiz_id = $1`, quizzes[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM progress WHERE quiz_id = $1 AND student_id = $2`, quizzes[1], uuid.UUID{1, 1}); err != nil {
		t.Fatal(err)
	}

	rb, err := st.StartProgressRebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close(context.Background(), false) }) // before the store closes
	if _, err := st.StartProgressRebuild(ctx); !errors.Is(err, store.ErrRebuildRunning) {
		t.Fatalf("a second rebuild at once: %v, want ErrRebuildRunning", err)
	}
	// Events of 30 stored attempts (one of them twice), of the tombstone,
	// and of an attempt never stored: only the 30 count.
	var evs []store.ProgressEvent
	for _, a := range stored[:30] {
		evs = append(evs, progressEvent(a))
	}
	evs = append(evs, progressEvent(stored[0]), progressEvent(tomb), progressEvent(attempt(uuid.New(), quizzes[0], course, 1, time.Now())))
	n, err := rb.Fold(ctx, evs[:20])
	if err == nil && n == 20 {
		n, err = rb.Fold(ctx, evs[10:]) // 10 already counted
	}
	if err != nil || n != 10 {
		t.Fatalf("Fold: %d, %v; want 20 then 10", n, err)
	}
	d, err := rb.Diff(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d.FoldedFromTable != 10 || d.Changed != 5 || d.Missing != 1 || d.Extra != 0 || len(d.First) != 6 {
		t.Fatalf("Diff: %+v; want 10 attempts from the table, 5 changed, 1 missing", d)
	}
	for _, row := range d.First {
		if row.Kind() == "missing" && (row.StudentID != uuid.UUID{1, 1} || row.QuizID != quizzes[1] || row.LiveAttempts != nil) {
			t.Errorf("missing row %+v", row)
		}
	}
	// A worker commits after the diff: the swap counts it.
	late := []store.Attempt{attempt(uuid.New(), quizzes[2], course, 2, time.Now()), attempt(uuid.UUID{1, 1}, quizzes[1], course, 10, time.Now())}
	if _, err := st.InsertAttempts(ctx, late); err != nil {
		t.Fatal(err)
	}
	if n, err := rb.Swap(ctx, 5*time.Second); err != nil || n != 2 {
		t.Fatalf("Swap: %d, %v; want the 2 late attempts counted", n, err)
	}
	if err := rb.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, db, progressDiffers); n != 0 {
		t.Fatalf("after the swap, %d progress rows differ from the aggregate of recorded attempts", n)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM pg_indexes WHERE tablename = 'progress' AND indexname = 'progress_pkey'`); n != 1 {
		t.Error("no progress_pkey index after the swap")
	}
	if n := queryInt(t, db, `SELECT count(*) FROM pg_class WHERE relname IN ('progress_rebuild', 'progress_rebuild_counted', 'progress_old')`); n != 0 {
		t.Error("the swap left tables behind")
	}
	// Workers go on with the new table, and the lock was released.
	if _, err := st.InsertAttempts(ctx, []store.Attempt{attempt(uuid.New(), quizzes[0], course, 1, time.Now())}); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, db, progressDiffers); n != 0 {
		t.Fatalf("after a write to the new table, %d progress rows differ", n)
	}
	rb, err = st.StartProgressRebuild(ctx)
	if err != nil {
		t.Fatalf("a rebuild after the first one ended: %v", err)
	}
	t.Cleanup(func() { rb.Close(context.Background(), false) })
	if err := rb.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
}
