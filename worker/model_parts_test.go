package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// modelFixture is a fixture with the read model's bucket and a Projector
// into it.
func modelFixture(t *testing.T) (*fixture, *readmodel.Model, *worker.Projector) {
	t.Helper()
	f := newFixture(t)
	if _, err := streams.Apply(t.Context(), f.js, false, streams.ReadModel(f.cfg)); err != nil {
		t.Fatal(err)
	}
	model, err := readmodel.OpenWriter(t.Context(), f.js, eventlog.BatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(model.Close)
	p := worker.NewProjector(model, f.st, func(context.Context) (uint64, error) { return 0, nil }, nil)
	return f, model, p
}

// deliver writes recs through w shuffled, a third of them twice, in
// batches of 1 to 30, as redeliveries and several workers would.
func deliver(t *testing.T, rng *rand.Rand, w worker.BatchWriter, recs []worker.Record) {
	t.Helper()
	deliveries := append([]worker.Record(nil), recs...)
	for _, r := range recs {
		if rng.IntN(3) == 0 {
			deliveries = append(deliveries, r)
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	for len(deliveries) > 0 {
		n := min(len(deliveries), 1+rng.IntN(30))
		if out := w.Write(t.Context(), deliveries[:n]); len(out.Unsettled) > 0 || len(out.Poison) > 0 {
			t.Fatalf("write: %+v", out)
		}
		deliveries = deliveries[n:]
	}
}

// Session events folded by the exam writer in any order (saves before
// their start included), any number of times, leave each student's
// sessions in the model equal to PostgreSQL's; writing them all again
// changes no value.
func TestProjectSessionsInAnyOrder(t *testing.T) {
	f, model, p := modelFixture(t)
	wr := worker.NewExamWriter(f.st, worker.ExamWriterConfig{Projector: p})
	rng := rand.New(rand.NewPCG(3, 9))
	students := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	var recs []worker.Record
	add := func(e events.ExamEvent) { recs = append(recs, record(t, uint64(len(recs)+1), e)) }
	for i := range 9 {
		s := eventstest.ExamStart(students[i%3], uuid.New(), 5, 4, time.Minute, 30)
		add(events.ExamEvent{Started: &s})
		fold := events.NewExamSession()
		fold.Apply(events.ExamEvent{Started: &s}, 1)
		for k := range 10 {
			sv := eventstest.ExamSave(s, rng.IntN(5), rng.IntN(5)-1, int64(k+1))
			add(events.ExamEvent{Saved: &sv})
			fold.Apply(events.ExamEvent{Saved: &sv}, 2)
		}
		if i%2 == 0 {
			fin := fold.Finalization(events.FinalizedByStudent, time.Now())
			add(events.ExamEvent{Finalized: &fin})
		}
	}
	deliver(t, rng, wr, recs)
	revs := map[uuid.UUID]uint64{}
	for _, id := range students {
		got, rev, err := model.GetSessions(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := worker.SessionsFromPostgres(t.Context(), f.st, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.List) != 3 || !got.Equal(&want) {
			t.Fatalf("sessions of %s:\nmodel    %+v\npostgres %+v", id, got, want)
		}
		revs[id] = rev
	}
	if out := wr.Write(t.Context(), recs); len(out.Unsettled) > 0 {
		t.Fatalf("again: %+v", out)
	}
	for _, id := range students {
		if _, rev, err := model.GetSessions(t.Context(), id); err != nil || rev != revs[id] {
			t.Errorf("writing every event again put a value of %s (revision %d, was %d; %v)", id, rev, revs[id], err)
		}
	}
}

// Check events folded by the check writer in any order, any number of
// times, leave each student's newest checks in the model equal to
// PostgreSQL's: every status as far along as stored, the page the newest
// 21 of 25, a long output left out.
func TestProjectChecksInAnyOrder(t *testing.T) {
	f, model, p := modelFixture(t)
	wr := worker.NewCheckWriter(f.st, nil)
	wr.Projector = p
	rng := rand.New(rand.NewPCG(5, 1))
	students := []uuid.UUID{uuid.New(), uuid.New()}
	var recs []worker.Record
	add := func(e events.CheckEvent) {
		data, err := events.EncodeCheck(e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, worker.Record{Seq: uint64(len(recs) + 1), Subject: e.Subject(), Data: data})
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 50 {
		ex, source := uuid.New(), fmt.Sprint("package main // ", i)
		ref := events.CheckRef{CheckID: uuid.New(), StudentID: students[i%2], ExerciseID: ex, CourseID: uuid.New(),
			Language: "go", SourceHash: events.HashSource(ex, "go", source), SubmittedAt: t0.Add(time.Duration(i) * time.Second)}
		add(events.CheckEvent{Requested: &events.CodeCheckRequested{CheckRef: ref, Source: source}})
		if i%5 == 0 {
			continue // still queued
		}
		add(events.CheckEvent{Started: &events.CodeCheckStarted{CheckRef: ref, Delivery: 1, StartedAt: t0}})
		if i%5 == 1 {
			continue // running
		}
		out := "ok\n"
		if i%7 == 0 {
			out = strings.Repeat("x", events.MaxCheckOutput)
		}
		add(events.CheckEvent{Completed: &events.CodeCheckCompleted{CheckRef: ref, ResultID: events.ResultID(ref.CheckID), Status: events.CheckFailed,
			Tests: []events.CheckTest{{Name: "sum", TimeMS: 3}}, Output: out, FinishedAt: t0.Add(time.Hour)}})
	}
	deliver(t, rng, wr, recs)
	for _, id := range students {
		got, _, err := model.GetChecks(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := worker.ChecksFromPostgres(t.Context(), f.st, id)
		if err != nil {
			t.Fatal(err)
		}
		cut := 0
		for _, c := range got.Page {
			if c.Cut {
				cut++
			}
		}
		if want.Total != 25 || len(want.Page) != readmodel.PageSize || cut == 0 || !got.Equal(&want) {
			t.Fatalf("checks of %s (%d cut):\nmodel    %+v\npostgres %+v", id, cut, got, want)
		}
	}
}
