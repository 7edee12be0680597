package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// The read model's worker folds what the writers settled, as they
// settled it: a batch folded, then delivered again with newer events
// (killed before its acks), then once more: each event is in the model
// exactly once, an attempt PostgreSQL refused is there as failed, the
// model equals PostgreSQL, and the last delivery writes nothing. A batch
// the writers have not settled yet is not folded.
func TestModelWriterFoldsOnce(t *testing.T) {
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
		answers := []events.Answer{}
		if i == 7 { // decodes, but PostgreSQL refuses it (jsonb cannot hold \u0000): a failed tombstone
			answers = []events.Answer{{QuestionID: "q\x00", ChoiceID: "c"}}
		}
		e := f.event(t, students[i%2], i%10, answers)
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, worker.Record{Seq: uint64(i + 1), Subject: e.Subject(), Data: data})
	}
	var settled atomic.Uint64
	mw := worker.NewModelWriter(worker.NewProjector(model, f.st, func(context.Context) (uint64, error) { return 0, nil }, nil),
		f.st, func(context.Context) (uint64, error) { return settled.Load(), nil })

	// Ahead of the writers: nothing is folded, the batch is handed back.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if out := mw.Write(ctx, recs[:20]); len(out.Unsettled) != 20 || out.Stored != 0 {
		t.Fatalf("a batch the writers have not settled: %+v", out)
	}
	for _, id := range students {
		if _, _, err := model.Get(t.Context(), id); !errors.Is(err, readmodel.ErrMissing) {
			t.Fatalf("a batch ahead of the writers was folded: %v", err)
		}
	}
	if out := worker.NewWriter(f.st, worker.WriterConfig{Tombstones: true}).Write(t.Context(), recs); out.Stored != 39 || len(out.Poison) != 1 {
		t.Fatalf("writers: %+v", out)
	}
	settled.Store(40)
	if out := mw.Write(t.Context(), recs[:20]); out.Stored != 20 || len(out.Unsettled) != 0 {
		t.Fatalf("first fold: %+v", out)
	}
	// Delivered again with 20 newer events: folded once each.
	if out := mw.Write(t.Context(), recs); out.Stored != 40 || len(out.Unsettled) != 0 {
		t.Fatalf("second fold: %+v", out)
	}
	revs := equalToPostgres(t, f, model, students)
	failed, _, err := model.Get(t.Context(), students[1])
	if err != nil {
		t.Fatal(err)
	}
	if n := countFailed(failed.Page); n != 1 {
		t.Fatalf("the refused attempt: %d failed in the model's page, want 1", n)
	}
	// Delivered once more (killed after its folds, before its acks):
	// nothing changes, not even a revision.
	mw.Write(t.Context(), recs)
	if again := equalToPostgres(t, f, model, students); again[0] != revs[0] || again[1] != revs[1] {
		t.Fatalf("a redelivered batch rewrote the model: revisions %v then %v", revs, again)
	}
}

func countFailed(page []readmodel.Attempt) int {
	n := 0
	for _, a := range page {
		if a.Failed {
			n++
		}
	}
	return n
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
		if !got.Equal(&want) || got.Total != 20 || sum(got.Progress)+countFailed(got.Page) != 20 {
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
