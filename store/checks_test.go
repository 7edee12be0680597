package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

// A check's row only moves forward (queued, running, final), whatever
// order its events are written in and however often; its first pass adds
// its exercise to the student's passes once.
func TestWriteChecksMovesForwardOnly(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	base := store.Check{ID: uuid.New(), StudentID: uuid.New(), ExerciseID: uuid.New(), CourseID: uuid.New(),
		Language: "python", SourceHash: "ab", Status: store.CheckQueued, SubmittedAt: at, StreamSeq: 1}
	running := base
	running.Status, running.StartedAt, running.StreamSeq = store.CheckRunning, &at, 2
	passed := base
	passed.Status, passed.FinishedAt, passed.StreamSeq = store.CheckPassed, &at, 3
	passed.Tests = []store.CheckTest{{Name: "test 1", Passed: true, TimeMS: 4}}

	// The verdict first, then the request and the start, redelivered.
	res, err := st.WriteChecks(ctx, []store.Check{passed})
	if err != nil || res.Changed != 1 || res.Passes != 1 {
		t.Fatalf("verdict: %+v, %v", res, err)
	}
	res, err = st.WriteChecks(ctx, []store.Check{base, running, passed})
	if err != nil || res.Changed != 0 || res.Passes != 0 {
		t.Fatalf("older events after the verdict: %+v, %v; want nothing changed", res, err)
	}
	got, err := st.GetCheck(ctx, base.StudentID, base.ID)
	if err != nil || got.Status != store.CheckPassed || len(got.Tests) != 1 || got.Tests[0] != passed.Tests[0] {
		t.Fatalf("stored: %+v, %v", got, err)
	}
	// Another passed check of the same exercise is no second pass.
	again := passed
	again.ID = uuid.New()
	if res, err := st.WriteChecks(ctx, []store.Check{again}); err != nil || res.Changed != 1 || res.Passes != 0 {
		t.Fatalf("a second pass: %+v, %v", res, err)
	}
	// In one batch, queued and running: running.
	other := base
	other.ID = uuid.New()
	otherRunning := running
	otherRunning.ID = other.ID
	if _, err := st.WriteChecks(ctx, []store.Check{otherRunning, other}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetCheck(ctx, base.StudentID, other.ID); err != nil || got.Status != store.CheckRunning {
		t.Fatalf("queued and running in one batch: %+v, %v", got, err)
	}
	if _, err := st.GetCheck(ctx, uuid.New(), base.ID); err == nil {
		t.Fatal("another student read the check")
	}
	prog, err := st.GetProgress(ctx, base.StudentID)
	if err != nil || len(prog) != 1 || prog[0].QuizID != uuid.Nil || prog[0].ExercisesPassed != 1 || prog[0].CourseID != base.CourseID {
		t.Fatalf("progress: %+v, %v; want one exercise passed", prog, err)
	}
}
