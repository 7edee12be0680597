package replay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/replay"
)

type outcome struct {
	res replay.Result
	err error
}

// goRun runs a replay in the background; its outcome arrives on the channel.
func goRun(ctx context.Context, cfg replay.Config) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		res, err := replay.Run(ctx, cfg)
		done <- outcome{res, err}
	}()
	return done
}

// A database connection lost in the middle of a restore is retried on
// another connection, and the restore completes as if nothing happened.
func TestOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	student := uuid.New()
	for i := range 40 {
		f.publish(t, f.event(student, i, i%11))
	}
	// The test holds progress locked, so the replay's batch blocks inside
	// its transaction; then the batch's connection is killed.
	release := f.lock(t, `LOCK TABLE progress IN ACCESS EXCLUSIVE MODE`)
	cfg := f.config(t, replay.Restore)
	cfg.BatchSize = 40
	done := goRun(t.Context(), cfg)
	var pid int
	waitFor(t, 20*time.Second, "the replay's batch to block", func() bool { pid = f.blocked(t, "%INSERT INTO attempts%"); return pid != 0 })
	f.exec(t, `SELECT pg_terminate_backend($1)`, pid)
	waitFor(t, 20*time.Second, "the batch to be retried on another connection", func() bool {
		p := f.blocked(t, "%INSERT INTO attempts%")
		return p != 0 && p != pid
	})
	release()
	o := <-done
	if o.err != nil {
		t.Fatalf("replay after a lost connection: %v", o.err)
	}
	// Without the retry, the batch would have been split and set aside.
	wantCounts(t, "restore through a lost connection", o.res, counts{Read: 40, Stored: 40})
	if o.res.LastSeq != 40 {
		t.Errorf("last seq settled %d, want 40", o.res.LastSeq)
	}
	if n := f.int(t, progressDrift); n != 0 {
		t.Fatalf("progress differs from the attempts in %d rows", n)
	}
}

// An interrupted restore returns at once, rolls its batch back, and says
// from where to go on: the batches before it are settled, and a replay
// from there completes the restore. An interrupted rebuild leaves the live
// table as it was.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	student := uuid.New()
	var evs []events.AttemptSubmitted
	for i := range 40 {
		e := f.event(student, i, i%11)
		f.publish(t, e)
		evs = append(evs, e)
	}
	// An uncommitted row of the attempt at seq 25 makes the replay's insert
	// of it wait for the test's transaction: the batch of seq 21-30 blocks.
	release := f.lock(t, `INSERT INTO attempts (id, student_id, quiz_id, course_id, answers, answers_hash, score, max_score, status, submitted_at, stream_seq)
		VALUES ($1, $2, $3, $4, '[]', '\x00', 0, 0, 'recorded', now(), 25)`, evs[24].AttemptID, student, evs[24].QuizID, evs[24].CourseID)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg := f.config(t, replay.Restore)
	cfg.BatchSize = 10
	done := goRun(ctx, cfg)
	waitFor(t, 20*time.Second, "the replay's third batch to block", func() bool { return f.blocked(t, "%INSERT INTO attempts%") != 0 })
	cancel()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the replay did not stop within 10s of its interruption")
	}
	if !errors.Is(o.err, replay.ErrInterrupted) || o.res.ResumeSeq != 21 || o.res.LastSeq != 20 || o.res.Read != 30 || o.res.Stored != 20 {
		t.Fatalf("interrupted replay: %v, %+v; want ErrInterrupted, seq 1-20 settled, resume at 21", o.err, o.res)
	}
	release()
	if got := f.int(t, `SELECT count(*) FROM attempts WHERE stream_seq > 20`); got != 0 {
		t.Fatalf("the interrupted batch left %d rows behind", got)
	}
	cfg.FromSeq = o.res.ResumeSeq
	res := f.run(t, cfg)
	wantCounts(t, "the resumed restore", res, counts{Read: 20, Stored: 20})
	if res.FirstSeq != 21 || res.LastSeq != 40 {
		t.Errorf("the resumed restore read seq %d to %d, want 21 to 40", res.FirstSeq, res.LastSeq)
	}
	if n := f.int(t, `SELECT count(*) FROM attempts`); n != 40 {
		t.Fatalf("%d attempts after the resumed restore, want 40", n)
	}
	if n := f.int(t, progressDrift); n != 0 {
		t.Fatalf("progress differs from the attempts in %d rows", n)
	}

	// A rebuild interrupted while it folds: the live table is untouched
	// and no shadow is left behind.
	_, before := f.checksums(t, false)
	release = f.lock(t, `LOCK TABLE attempts IN ACCESS EXCLUSIVE MODE`)
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	done = goRun(ctx, f.config(t, replay.RebuildProgress))
	waitFor(t, 20*time.Second, "the rebuild's fold to block", func() bool { return f.blocked(t, "%INSERT INTO progress_rebuild_counted%") != 0 })
	cancel()
	o = <-done
	release()
	if !errors.Is(o.err, replay.ErrInterrupted) || o.res.ResumeSeq != 0 || o.res.Swapped || o.res.Diff != nil {
		t.Fatalf("interrupted rebuild: %v, %+v; want ErrInterrupted, nothing compared or swapped", o.err, o.res)
	}
	if _, after := f.checksums(t, false); after != before {
		t.Error("an interrupted rebuild changed the live progress table")
	}
	if n := f.int(t, `SELECT count(*) FROM pg_class WHERE relname IN ('progress_rebuild', 'progress_rebuild_counted')`); n != 0 {
		t.Error("an interrupted rebuild left its tables behind")
	}

	// Interrupted before it began: nothing was settled, nothing to resume.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	res, err := replay.Run(ctx, f.config(t, replay.Restore))
	if !errors.Is(err, replay.ErrInterrupted) || res.ResumeSeq != 0 || res.Read != 0 {
		t.Fatalf("a replay interrupted before it began: %v, %+v; want ErrInterrupted and nothing read", err, res)
	}
}
