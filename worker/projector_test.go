package worker_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// A batch committed by a worker killed before its folds, then delivered
// again with newer events, and again after being folded (killed before
// the ack): each event is in the model exactly once, and the model equals
// PostgreSQL; the last delivery writes nothing.
func TestProjectorFoldsOnce(t *testing.T) {
	f := newFixture(t)
	if _, err := streams.Apply(t.Context(), f.js, false, streams.ReadModel(f.cfg)); err != nil {
		t.Fatal(err)
	}
	model, err := readmodel.OpenWriter(t.Context(), f.js, eventlog.BatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	students := []uuid.UUID{uuid.New(), uuid.New()}
	var recs []worker.Record
	for i := range 40 {
		e := f.event(t, students[i%2], i%10, []events.Answer{})
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, worker.Record{Seq: uint64(i + 1), Subject: e.Subject(), Data: data})
	}
	floor := func(context.Context) (uint64, error) { return 0, nil }
	plain := worker.NewWriter(f.st, worker.WriterConfig{})
	projecting := worker.NewWriter(f.st, worker.WriterConfig{Projector: worker.NewProjector(model, f.st, floor, nil)})

	// Committed, never folded (the worker died after its commit).
	if out := plain.Write(t.Context(), recs[:20]); out.Stored != 20 {
		t.Fatalf("first write: %+v", out)
	}
	// Delivered again with 20 newer events: folded once each.
	if out := projecting.Write(t.Context(), recs); out.Stored != 20 || out.Duplicates != 20 || len(out.Unsettled) != 0 {
		t.Fatalf("second write: %+v", out)
	}
	revs := equalToPostgres(t, f, model, students)
	// Delivered once more (the worker died after its folds, before its
	// acks): nothing changes, not even a revision.
	projecting.Write(t.Context(), recs)
	if again := equalToPostgres(t, f, model, students); again[0] != revs[0] || again[1] != revs[1] {
		t.Fatalf("a redelivered batch rewrote the model: revisions %v then %v", revs, again)
	}
}

// equalToPostgres fails t unless each student's value shows what
// PostgreSQL holds (20 attempts each), and returns their revisions.
func equalToPostgres(t *testing.T, f *fixture, model *readmodel.Model, students []uuid.UUID) []uint64 {
	t.Helper()
	var revs []uint64
	for _, id := range students {
		snap, err := f.st.GetStudentSnapshot(t.Context(), id, 0, readmodel.PageSize)
		if err != nil {
			t.Fatal(err)
		}
		want := worker.FromSnapshot(snap, 0, 0)
		got, rev, err := model.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(&want) || got.Total != 20 || sum(got.Progress) != 20 {
			t.Fatalf("model of %s: %+v, PostgreSQL %+v", id, got, want)
		}
		revs = append(revs, rev)
	}
	return revs
}

func sum(p []readmodel.Quiz) int {
	n := 0
	for _, q := range p {
		n += q.Attempts
	}
	return n
}
