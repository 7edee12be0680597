package readmodel_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// A corrupted read model is rebuilt: the stream folded into a shadow
// matches PostgreSQL for every student; without Swap the differing values
// are counted and left; with Swap they are replaced, and the model equals
// PostgreSQL again.
func TestRebuild(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	s.StartWorker(t, worker.Config{})
	in := s.StartAPI(t, api.Config{TokenMissRate: -1, AttemptRate: -1, MaxUnsettledPerStudent: -1})
	people := apptest.NewStudents(t, s, "rebuild", 6)
	for i, st := range people {
		c := st.On(in.URL)
		for k := range 5 + 5*i {
			q := s.Quizzes[(i+k)%len(s.Quizzes)]
			if _, err := c.SubmitAttempt(t.Context(), q.ID.String(), apptest.AnswersFor(q, k%10),
				client.WithIdempotencyKey(fmt.Sprintf("rebuild-%d-%d", i, k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.WaitDrained(t, time.Minute)
	m, err := readmodel.OpenWriter(t.Context(), s.JS, eventlog.BatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	modelEqualsPostgres(t, s, m, people)
	// Corrupt three values: a count too high, a best score, a page entry.
	for i, st := range people[:3] {
		v, rev, err := m.Get(t.Context(), st.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			v.Total += 3
		case 1:
			v.Progress[0].Best += 100
		case 2:
			v.Page[0].Score++
		}
		if _, err := m.Put(t.Context(), st.ID, &v, rev); err != nil {
			t.Fatal(err)
		}
	}
	cfg := replay.ReadModelConfig{Store: s.Store, JetStream: s.JS, Stream: s.Stream, Logger: apptest.Logger(t)}
	res, err := replay.RebuildReadModel(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Students != 6 || res.Matched != 6 || res.FromPostgres != 0 || res.NotInPostgres != 0 || res.Differed != 3 || res.Swapped != 0 {
		t.Fatalf("rebuild without swap: %+v, want 6 students matched, 3 differing, none swapped", res)
	}
	if v, _, _ := m.Get(t.Context(), people[0].ID); v.Total != fromPostgres(t, s, people[0].ID).Total+3 {
		t.Fatal("a rebuild without swap changed the model")
	}
	cfg.Swap = true
	if res, err = replay.RebuildReadModel(t.Context(), cfg); err != nil || res.Differed != 3 || res.Swapped != 3 {
		t.Fatalf("rebuild with swap: %+v, %v; want 3 differing, 3 swapped", res, err)
	}
	modelEqualsPostgres(t, s, m, people)
	if res, err = replay.RebuildReadModel(t.Context(), cfg); err != nil || res.Differed != 0 {
		t.Fatalf("a second rebuild: %+v, %v; want nothing differing", res, err)
	}
}
