package replay_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// The database is wiped and restored from the stream: every attempt row
// (poison tombstones included) and every progress row come back
// identical, and nothing is dead-lettered twice. A second replay over the
// live database changes nothing, recorded_at included.
func TestRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	// Students retry some attempts with the same idempotency key: the
	// stream keeps one event per attempt.
	accepted := 0
	for i := range 4 {
		student := uuid.New()
		for j := range 30 {
			e := f.event(student, i*7+j, (i+j)%11)
			e.IdempotencyKey = fmt.Sprintf("k-%d", j)
			e.AttemptID = events.AttemptID(student, e.IdempotencyKey)
			for range 1 + j%3 {
				f.publish(t, e)
			}
			accepted++
		}
	}
	// A bulk of events published concurrently.
	const bulk = 3000
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			student := uuid.New()
			for i := g; i < bulk; i += 16 {
				if _, err := f.log.PublishAttempt(t.Context(), f.event(student, i, i%11)); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d bulk publishes failed", failed.Load())
	}
	accepted += bulk
	// Two poison messages: one PostgreSQL refuses (a failed tombstone is
	// stored), one that does not decode (nothing can be stored).
	nul, data := f.poisonWithNUL(uuid.New())
	f.publishRaw(t, nul.Subject(), data)
	f.publishRaw(t, events.AttemptSubject(uuid.New(), uuid.New()), []byte("{garbage"))

	stop := f.startWorker(t, worker.Config{}).Stop
	f.waitDrained(t, 60*time.Second)
	stop()
	messages := int64(eventstest.StreamMessages(t, f.js, f.stream.Name))
	if messages != int64(accepted)+2 {
		t.Fatalf("stream holds %d messages, want %d attempts and 2 poison", messages, accepted)
	}
	if n := f.int(t, `SELECT count(*) FROM attempts WHERE status = 'recorded'`); n != accepted {
		t.Fatalf("the worker stored %d attempts, want %d", n, accepted)
	}
	if n := f.int(t, `SELECT count(*) FROM attempts WHERE status = 'failed' AND id = $1`, nul.AttemptID); n != 1 {
		t.Fatal("no failed tombstone for the poison attempt")
	}
	dl, err := streams.EnsureDeadLetters(t.Context(), f.js, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	letters := func() uint64 {
		n, err := dl.Count(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := letters(); n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}
	wantAttempts, wantProgress := f.checksums(t, false)

	f.exec(t, `DELETE FROM attempts; DELETE FROM progress`)
	if a, p := f.checksums(t, false); a == wantAttempts || p == wantProgress {
		t.Fatal("the tables still hold their rows after DELETE")
	}
	var reports [][2]uint64
	cfg := f.config(t, "") // the default mode
	cfg.Progress = func(done, total uint64) { reports = append(reports, [2]uint64{done, total}) }
	res := f.run(t, cfg)
	wantCounts(t, "restore over an empty database", res, counts{Read: messages, Stored: int64(accepted), Poison: 2})
	if res.Mode != replay.Restore || res.FirstSeq != 1 || res.LastSeq != uint64(messages) || res.EndSeq != uint64(messages) ||
		res.Estimate != uint64(messages) || res.ResumeSeq != 0 || res.Diff != nil || res.Duration <= 0 || res.Rate() <= 0 {
		t.Errorf("restore: %+v, want mode restore over seq 1 to %d, a duration and a rate", res, messages)
	}
	t.Logf("restore: %d events in %s, %.0f events/s", res.Read, res.Duration, res.Rate())
	gotAttempts, gotProgress := f.checksums(t, false)
	if gotAttempts != wantAttempts {
		t.Errorf("attempts after the restore: %s, want %s", gotAttempts, wantAttempts)
	}
	if gotProgress != wantProgress {
		t.Errorf("progress after the restore: %s, want %s", gotProgress, wantProgress)
	}
	if n := letters(); n != 2 {
		t.Errorf("%d dead letters after the restore, want the same 2", n)
	}
	// Progress is reported before the first batch and after each one, up
	// to every event read, against the estimate.
	if len(reports) < 2 || reports[0] != [2]uint64{0, uint64(messages)} || reports[len(reports)-1] != [2]uint64{uint64(messages), uint64(messages)} {
		t.Errorf("progress reports %v, want from 0 to %d of %d", reports, messages, messages)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i][0] < reports[i-1][0] {
			t.Errorf("progress went back from %d to %d", reports[i-1][0], reports[i][0])
		}
	}

	// Again, over the live database: nothing changes, recorded_at included.
	beforeAttempts, beforeProgress := f.checksums(t, true)
	cfg = f.config(t, replay.Restore)
	cfg.BatchSize = 300
	res = f.run(t, cfg)
	wantCounts(t, "restore over the live database", res, counts{Read: messages, AlreadyPresent: int64(accepted), Poison: 2})
	if a, p := f.checksums(t, true); a != beforeAttempts || p != beforeProgress {
		t.Errorf("a second replay changed the database: attempts %s -> %s, progress %s -> %s", beforeAttempts, a, beforeProgress, p)
	}
}
