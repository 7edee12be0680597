package replay_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/worker"
)

// A corrupted progress table is rebuilt from the stream: without Swap the
// differences are reported and nothing changes; with KeepShadow the
// rebuilt table stays; with Swap, while a worker keeps storing attempts
// (one of its batches waiting on the swap's lock), the live table ends
// equal to the aggregate of recorded attempts, and no worker write fails.
func TestRebuildProgress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reg := f.startWorker(t, worker.Config{BatchSize: 20, MaxWait: 20 * time.Millisecond}).Registry
	students := make([]uuid.UUID, 20)
	for i := range students {
		students[i] = uuid.New()
	}
	for i := range 600 {
		f.publish(t, f.event(students[i%20], i%6, i%11))
	}
	// An event whose attempt is stored as a failed tombstone (decoded, not
	// counted), and one that does not decode (skipped as poison).
	nul, data := f.poisonWithNUL(students[0])
	f.publishRaw(t, nul.Subject(), data)
	f.publishRaw(t, events.AttemptSubject(students[1], uuid.New()), []byte("{garbage"))
	f.waitDrained(t, 30*time.Second)
	if n := f.int(t, `SELECT count(*) FROM attempts WHERE status = 'failed'`); n != 1 {
		t.Fatalf("%d failed tombstones, want 1", n)
	}
	if n := f.int(t, progressDrift); n != 0 {
		t.Fatalf("progress differs from the attempts in %d rows before the test corrupts it", n)
	}
	rows := int64(f.int(t, `SELECT count(*) FROM progress`))
	// Corrupt it: 4 rows counting too many, 3 with a wrong best score, 3
	// rows deleted, 2 rows of attempts that do not exist.
	f.exec(t, `
		WITH r AS (SELECT student_id, quiz_id, row_number() OVER (ORDER BY student_id, quiz_id) AS n FROM progress)
		UPDATE progress p SET attempts = attempts + 2 FROM r WHERE (p.student_id, p.quiz_id) = (r.student_id, r.quiz_id) AND r.n <= 4;
		WITH r AS (SELECT student_id, quiz_id, row_number() OVER (ORDER BY student_id, quiz_id) AS n FROM progress)
		UPDATE progress p SET best_score = best_score + 100 FROM r WHERE (p.student_id, p.quiz_id) = (r.student_id, r.quiz_id) AND r.n BETWEEN 5 AND 7;
		WITH r AS (SELECT student_id, quiz_id, row_number() OVER (ORDER BY student_id, quiz_id) AS n FROM progress)
		DELETE FROM progress p USING r WHERE (p.student_id, p.quiz_id) = (r.student_id, r.quiz_id) AND r.n BETWEEN 8 AND 10;
		INSERT INTO progress (student_id, quiz_id, course_id, attempts, best_score)
		SELECT gen_random_uuid(), quiz_id, course_id, 5, 5 FROM progress LIMIT 2;`)
	if n := f.int(t, progressDrift); n != 12 {
		t.Fatalf("the corruption left %d rows differing, want 12", n)
	}
	shadowExists := func() bool {
		return f.int(t, `SELECT count(*) FROM pg_class WHERE relname IN ('progress_rebuild', 'progress_rebuild_counted', 'progress_old')`) > 0
	}

	// Without Swap: the differences, and the live table untouched.
	_, before := f.checksums(t, false)
	cfg := f.config(t, replay.RebuildProgress)
	cfg.DiffRows = 5
	res := f.run(t, cfg)
	wantCounts(t, "a rebuild without Swap", res, counts{Read: 602, Counted: 600, NotCounted: 1, Poison: 1})
	d := res.Diff
	switch {
	case d == nil:
		t.Fatal("a rebuild without Swap compared nothing")
	case d.Changed != 7 || d.Missing != 3 || d.Extra != 2 || d.LiveRows != rows-1 || d.RebuiltRows != rows || len(d.First) != 5:
		t.Fatalf("diff %+v, want 7 changed, 3 missing from live, 2 only in live, of %d live and %d rebuilt rows, the first 5 listed",
			d, rows-1, rows)
	}
	for _, row := range d.First {
		if row.Kind() == "changed" && *row.LiveAttempts == *row.RebuiltAttempts && *row.LiveBest == *row.RebuiltBest {
			t.Errorf("a row listed as differing does not differ: %+v", row)
		}
	}
	if res.Swapped || res.CountedUnderLock != 0 || res.SwapDuration != 0 {
		t.Errorf("a rebuild without Swap swapped: %+v", res)
	}
	if _, after := f.checksums(t, false); after != before {
		t.Fatal("a rebuild without Swap changed the live progress table")
	}
	if shadowExists() {
		t.Fatal("a rebuild without Swap left its tables behind")
	}
	// KeepShadow keeps it, equal to the aggregate of the attempts.
	cfg = f.config(t, replay.RebuildProgress)
	cfg.KeepShadow = true
	if res := f.run(t, cfg); res.Diff == nil || len(res.Diff.First) != 0 || res.Diff.Changed != 7 {
		t.Errorf("a rebuild with KeepShadow and no DiffRows: %+v, want the counts of differences and no rows", res.Diff)
	}
	if n := f.int(t, storetest.ProgressDriftSQL("progress_rebuild")); n != 0 {
		t.Fatalf("the kept shadow differs from the aggregate of attempts in %d rows", n)
	}

	// With Swap, under load: a publisher keeps going and the worker keeps
	// storing, before, during and after the swap.
	var loadWG sync.WaitGroup
	var published atomic.Int64
	var loadStopped atomic.Bool
	stopLoad := func() { loadStopped.Store(true); loadWG.Wait() }
	loadWG.Add(1)
	go func() {
		defer loadWG.Done()
		for i := 0; !loadStopped.Load(); i++ {
			student := students[rand.IntN(len(students))]
			if i%5 == 0 {
				student = uuid.New()
			}
			if _, err := f.log.PublishAttempt(context.Background(), f.event(student, rand.IntN(6), rand.IntN(11))); err != nil {
				t.Errorf("load: %v", err)
				return
			}
			published.Add(1)
			time.Sleep(2 * time.Millisecond) // a steady load, not a flood
		}
	}()
	defer stopLoad()
	countAttempts := func() int { return f.int(t, `SELECT count(*) FROM attempts`) }
	stored0 := countAttempts()
	waitFor(t, 10*time.Second, "the worker to store some of the load", func() bool { return countAttempts() >= stored0+50 })

	// The test holds a lock on progress that the swap's ACCESS EXCLUSIVE
	// lock must wait for; the worker's next batch then queues behind the
	// swap, on the old table.
	release := f.lock(t, `LOCK TABLE progress IN ACCESS SHARE MODE`)
	cfg = f.config(t, replay.RebuildProgress)
	cfg.Swap, cfg.BatchSize = true, 100
	done := goRun(t.Context(), cfg)
	waitFor(t, 30*time.Second, "the swap to wait for its lock", func() bool { return f.blocked(t, "LOCK TABLE progress%") != 0 })
	waitFor(t, 10*time.Second, "a worker batch to queue behind the swap", func() bool { return f.blocked(t, "%INSERT INTO attempts%") != 0 })
	release()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the replay did not end after the lock was released")
	}
	if o.err != nil {
		t.Fatalf("rebuild with Swap: %v", o.err)
	}
	res = o.res
	if !res.Swapped || res.SwapDuration <= 0 {
		t.Fatalf("no swap reported: %+v", res)
	}
	// A deleted row may have been recreated by the worker since, with a
	// count too low: missing then becomes changed.
	if d := res.Diff; d == nil || d.Changed+d.Missing != 10 || d.Extra != 2 {
		t.Errorf("diff before the swap %+v, want the 12 corrupted rows (10 changed or missing, 2 only in live)", d)
	}
	if res.FromTable == 0 {
		t.Error("no attempt was counted from the table, so the load did not run during the rebuild")
	}
	if res.Counted+res.NotCounted+res.Poison != res.Read {
		t.Errorf("of %d events read, %d counted, %d not counted and %d poison", res.Read, res.Counted, res.NotCounted, res.Poison)
	}

	// The worker goes on writing, into the new table.
	storedAtSwap := countAttempts()
	waitFor(t, 10*time.Second, "the worker to store more after the swap", func() bool { return countAttempts() >= storedAtSwap+50 })
	stopLoad()
	f.waitDrained(t, 30*time.Second)
	if n := countAttempts(); n != 601+int(published.Load()) {
		t.Fatalf("%d attempts stored, want %d and the tombstone", n, 600+published.Load())
	}
	if n := f.int(t, progressDrift); n != 0 {
		t.Fatalf("after the swap and the load, progress differs from the aggregate of recorded attempts in %d rows", n)
	}
	if n := counter(t, reg, "quizstream_worker_write_retries_total"); n != 0 {
		t.Errorf("%v worker writes failed around the swap: a statement that waited on the old table must run on the new one", n)
	}
	if shadowExists() {
		t.Error("the swap left a rebuild table or the old table behind")
	}
	if n := f.int(t, `SELECT count(*) FROM pg_indexes WHERE tablename = 'progress' AND indexname = 'progress_pkey'`); n != 1 {
		t.Error("the new progress table's primary key is not named progress_pkey")
	}
}
