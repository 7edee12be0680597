package replay_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// checkPublisher publishes the events of code checks as the API and a
// checker do, on the fixture's checks stream.
type checkPublisher struct {
	t        *testing.T
	log      *eventlog.CheckLog
	student  uuid.UUID
	course   uuid.UUID
	exercise uuid.UUID
}

func (f *fixture) checks(t *testing.T) *checkPublisher {
	t.Helper()
	l, err := eventlog.OpenCheckLog(t.Context(), f.js, streams.CheckStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return &checkPublisher{t: t, log: l, student: uuid.New(), course: uuid.New(), exercise: uuid.New()}
}

// check publishes one check's events up to status: queued (a request),
// running (and a start), or a final status (and a verdict); it returns
// the check's id.
func (p *checkPublisher) check(status string) uuid.UUID {
	t, ctx := p.t, p.t.Context()
	t.Helper()
	at := time.Now().UTC().Truncate(time.Microsecond)
	ref := events.CheckRef{CheckID: uuid.New(), StudentID: p.student, ExerciseID: p.exercise, CourseID: p.course,
		Language: "python", SourceHash: events.HashSource(p.exercise, "python", status), SubmittedAt: at}
	if _, err := p.log.Request(ctx, events.CodeCheckRequested{CheckRef: ref, Source: "print(" + status + ")"}); err != nil {
		t.Fatal(err)
	}
	if status == store.CheckQueued {
		return ref.CheckID
	}
	started := at.Add(time.Second)
	if err := p.log.Start(ctx, events.CodeCheckStarted{CheckRef: ref, Delivery: 1, StartedAt: started}); err != nil {
		t.Fatal(err)
	}
	if status == store.CheckRunning {
		return ref.CheckID
	}
	_, err := p.log.Complete(ctx, events.CodeCheckCompleted{CheckRef: ref, ResultID: events.ResultID(ref.CheckID), Status: status,
		Tests: []events.CheckTest{{Name: "1", Passed: status == store.CheckPassed, TimeMS: 7}}, Output: "out",
		StartedAt: &started, FinishedAt: started.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return ref.CheckID
}

// rebuildChecks rebuilds the checks projection through the registry, as
// `quizstream replay --rebuild checks` does.
func (f *fixture) rebuildChecks(t *testing.T, edit func(*replay.Config)) replay.Result {
	t.Helper()
	p, err := replay.Lookup("checks")
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t, "")
	if edit != nil {
		edit(&cfg)
	}
	rb, err := p.Rebuild(t.Context(), cfg)
	if err != nil {
		t.Fatalf("rebuild checks: %v (%+v)", err, rb)
	}
	res, ok := rb.(replay.Result)
	if !ok || res.Mode != replay.RebuildChecks || res.Checks == nil {
		t.Fatalf("rebuild checks returned %#v", rb)
	}
	return res
}

// The checks projection is rebuilt from the checks stream with the
// writers' own statement: intact, it shows no drift; a check deleted, a
// status changed and a pass deleted are drift, listed, and left alone
// without Swap; with Swap (while a writer stores new checks) they are
// repaired and the tables keep their names and indexes; live rows whose
// events left the stream are kept as they are.
func TestRebuildChecks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.checks(t)
	passed, failed, running := p.check(store.CheckPassed), p.check(store.CheckFailed), p.check(store.CheckRunning)
	queued := p.check(store.CheckQueued)
	f.publishRaw(t, events.CheckSubject(p.student, uuid.New(), "requested"), []byte("{garbage"))
	f.startWorker(t, worker.Config{})
	waitFor(t, 20*time.Second, "the check writer to store the 4 checks", func() bool {
		return f.int(t, `SELECT count(*) FROM checks`) == 4 && f.int(t, `SELECT count(*) FROM checks WHERE status IN ('passed', 'failed')`) == 2
	})
	indexes := func() []string {
		rows, err := f.db.Query(t.Context(), `SELECT indexname FROM pg_indexes
			WHERE tablename IN ('checks', 'exercise_passes') OR tablename LIKE '%rebuild' ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	schema := indexes()
	shadowLeft := func() int {
		return f.int(t, `SELECT count(*) FROM pg_class WHERE relname IN ('checks_rebuild', 'exercise_passes_rebuild')`)
	}

	// Intact: 9 events (4 requests, 3 starts, 2 verdicts) and the poison.
	res := f.rebuildChecks(t, nil)
	d := res.Checks
	if res.Read != 10 || res.Poison != 1 || res.Counted+res.NotCounted != 9 || d.Differs() || d.LiveRows != 4 || d.RebuiltRows != 4 ||
		d.LivePasses != 1 || d.RebuiltPasses != 1 || res.Drift() != "" || res.Swapped || shadowLeft() != 0 {
		t.Fatalf("rebuild of an intact projection: %+v, diff %+v", res, *d)
	}

	// Damaged: a check deleted, another's status changed, the pass deleted.
	f.exec(t, `DELETE FROM checks WHERE id = $1`, failed)
	f.exec(t, `UPDATE checks SET status = 'error' WHERE id = $1`, passed)
	f.exec(t, `DELETE FROM exercise_passes`)
	res = f.rebuildChecks(t, func(c *replay.Config) { c.DiffRows = 10 })
	d = res.Checks
	if d.Changed != 1 || d.Missing != 1 || d.Extra != 0 || d.PassesMissing != 1 || d.PassesExtra != 0 || d.LiveRows != 3 || d.RebuiltRows != 4 ||
		!strings.Contains(res.Drift(), "checks") || res.Swapped {
		t.Fatalf("rebuild of a damaged projection: %+v", *d)
	}
	want := map[uuid.UUID]string{passed: "changed error passed", failed: "missing - failed"}
	if len(d.First) != 2 {
		t.Fatalf("rows listed: %+v, want the 2 damaged checks", d.First)
	}
	for _, row := range d.First {
		live, rebuilt := "-", "-"
		if row.LiveStatus != nil {
			live = *row.LiveStatus
		}
		if row.RebuiltStatus != nil {
			rebuilt = *row.RebuiltStatus
		}
		if got := row.Kind() + " " + live + " " + rebuilt; got != want[row.CheckID] || row.StudentID != p.student {
			t.Errorf("check %s listed as %q (student %s), want %q", row.CheckID, got, row.StudentID, want[row.CheckID])
		}
	}
	if n := f.int(t, `SELECT count(*) FROM checks`); n != 3 || shadowLeft() != 0 {
		t.Fatalf("a rebuild without Swap changed the live table (%d rows) or left its shadow (%d)", n, shadowLeft())
	}
	res = f.rebuildChecks(t, func(c *replay.Config) { c.KeepShadow = true })
	if shadowLeft() != 2 || f.int(t, `SELECT count(*) FROM checks_rebuild`) != 4 || f.int(t, `SELECT count(*) FROM exercise_passes_rebuild`) != 1 {
		t.Fatalf("a rebuild with KeepShadow did not keep both rebuilt tables whole: %+v", *res.Checks)
	}

	// Swapped while the test holds a lock on checks: the swap waits, a
	// check published meanwhile is stored by the writer behind it, into
	// the new table.
	release := f.lock(t, `LOCK TABLE checks IN ACCESS SHARE MODE`)
	cfg := f.config(t, replay.RebuildChecks)
	cfg.Swap = true
	done := goRun(t.Context(), cfg)
	waitFor(t, 30*time.Second, "the swap to wait for its lock", func() bool { return f.blocked(t, "LOCK TABLE checks%") != 0 })
	late := p.check(store.CheckPassed)
	release()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the rebuild did not end after the lock was released")
	}
	if o.err != nil || !o.res.Swapped || o.res.Checks == nil || !o.res.Checks.Differs() || o.res.Drift() != "" {
		t.Fatalf("rebuild with Swap: %v, %+v", o.err, o.res)
	}
	waitFor(t, 20*time.Second, "the writer to store the check published during the swap", func() bool {
		return f.int(t, `SELECT count(*) FROM checks WHERE id = $1 AND status = 'passed'`, late) == 1
	})
	statuses := map[uuid.UUID]string{passed: "passed", failed: "failed", running: "running", queued: "queued", late: "passed"}
	for id, status := range statuses {
		if n := f.int(t, `SELECT count(*) FROM checks WHERE id = $1 AND status = $2 AND student_id = $3`, id, status, p.student); n != 1 {
			t.Errorf("after the swap, check %s is not %s", id, status)
		}
	}
	if n := f.int(t, `SELECT count(*) FROM exercise_passes WHERE student_id = $1 AND exercise_id = $2`, p.student, p.exercise); n != 1 {
		t.Error("after the swap, the exercise passed is not back")
	}
	if got := indexes(); !slices.Equal(got, schema) {
		t.Errorf("after the swap the indexes are %v, want those the migrations made: %v", got, schema)
	}
	if res := f.rebuildChecks(t, nil); res.Checks.Differs() || res.Checks.LiveRows != 5 {
		t.Fatalf("rebuild after the swap: %+v", *res.Checks)
	}

	// Events gone from the stream (retention): the live rows they made are
	// kept as they are, not reported missing from the rebuild.
	cc := streams.CheckStreamConfig{}
	if err := cc.Validate(); err != nil {
		t.Fatal(err)
	}
	stream, err := f.js.Stream(t.Context(), cc.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(t.Context(), jetstream.WithPurgeSequence(8)); err != nil {
		t.Fatal(err)
	}
	res = f.rebuildChecks(t, nil)
	if d := res.Checks; d.Differs() || d.RebuiltRows != 5 || res.FromTable < 2 {
		t.Fatalf("rebuild after a purge of the first events: from live %d, diff %+v", res.FromTable, *d)
	}
	// It reads its whole stream: a range is refused.
	cfg = f.config(t, replay.RebuildChecks)
	cfg.FromSeq = 5
	if _, err := replay.Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "whole stream") {
		t.Errorf("a checks rebuild over a range of sequences: %v, want it refused", err)
	}
}

// An unknown projection is refused with the list of those registered.
func TestLookupUnknownProjection(t *testing.T) {
	t.Parallel()
	var names []string
	for _, p := range replay.Projections() {
		names = append(names, p.Name)
		if got, err := replay.Lookup(p.Name); err != nil || got.Name != p.Name {
			t.Errorf("Lookup(%q) = %+v, %v", p.Name, got, err)
		}
	}
	if !slices.Equal(names, []string{"checks", "progress", "readmodel"}) {
		t.Errorf("registered projections %v", names)
	}
	_, err := replay.Lookup("attempts")
	if err == nil || !strings.Contains(err.Error(), `"attempts"`) || !strings.Contains(err.Error(), "checks, progress, readmodel") {
		t.Errorf("Lookup of an unknown projection: %v, want one naming it and listing checks, progress, readmodel", err)
	}
}
