package readmodel_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/worker"
)

// fromPostgres is a student's value as PostgreSQL holds it now.
func fromPostgres(t testing.TB, s *apptest.Stack, id uuid.UUID) readmodel.Student {
	t.Helper()
	snap, err := s.Store.GetStudentSnapshot(t.Context(), id, 0, readmodel.PageSize)
	if err != nil {
		t.Fatal(err)
	}
	return worker.FromSnapshot(snap, 0, 0)
}

// modelEqualsPostgres fails t unless every student's value in the model
// shows what PostgreSQL holds.
func modelEqualsPostgres(t testing.TB, s *apptest.Stack, m *readmodel.Model, students []apptest.Student) {
	t.Helper()
	for _, st := range students {
		want := fromPostgres(t, s, st.ID)
		got, _, err := m.Get(t.Context(), st.ID)
		if errors.Is(err, readmodel.ErrMissing) && want.Total == 0 {
			continue
		}
		if err != nil {
			t.Fatalf("model of %s: %v", st.ID, err)
		}
		if !got.Equal(&want) {
			t.Errorf("model of %s differs from PostgreSQL:\nmodel    %+v\npostgres %+v", st.ID, got, want)
		}
	}
}

// fallbacks returns the sum of quizstream_api_readmodel_fallbacks_total
// in reg by reason.
func fallbacks(t testing.TB, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "quizstream_api_readmodel_fallbacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
