package readmodel_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

// student is an account made straight in the database, with a token:
// signing many up through the API would mostly measure argon2id.
type student struct {
	id    uuid.UUID
	token string
}

func (st student) on(base string) *client.Client { return apptest.Client(base).WithToken(st.token) }

func newStudents(t testing.TB, s *apptest.Stack, prefix string, n int) []student {
	t.Helper()
	out := make([]student, n)
	for i := range out {
		b := make([]byte, 32)
		rand.Read(b)
		tok := base64.RawURLEncoding.EncodeToString(b)
		sum := sha256.Sum256([]byte(tok))
		id := uuid.New()
		err := s.Store.CreateStudent(t.Context(), store.NewStudent{
			Student:      store.Student{ID: id, Email: fmt.Sprintf("%s-%d-%s@example.com", prefix, i, id), Name: "Student", CreatedAt: time.Now()},
			PasswordHash: "not a hash: this account has a token only",
			TokenHash:    sum[:], TokenExpires: time.Now().Add(24 * time.Hour),
		})
		if err != nil {
			t.Fatalf("create student: %v", err)
		}
		out[i] = student{id: id, token: tok}
	}
	return out
}

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
func modelEqualsPostgres(t testing.TB, s *apptest.Stack, m *readmodel.Model, students []student) {
	t.Helper()
	for _, st := range students {
		want := fromPostgres(t, s, st.id)
		got, _, err := m.Get(t.Context(), st.id)
		if errors.Is(err, readmodel.ErrMissing) && want.Total == 0 {
			continue
		}
		if err != nil {
			t.Fatalf("model of %s: %v", st.id, err)
		}
		if !got.Equal(&want) {
			t.Errorf("model of %s differs from PostgreSQL:\nmodel    %+v\npostgres %+v", st.id, got, want)
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
