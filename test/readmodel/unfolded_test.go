package readmodel_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// An attempt PostgreSQL holds but the read model has not folded yet (the
// model folds behind the writers, on its own consumer; here no worker
// runs, so the attempt stays above the ack floor) is unsettled: by id,
// and in a list PostgreSQL answers (a quiz filter past the model's page),
// it reads accepted, never recorded while progress, the model's, does not
// count it.
func TestUnfoldedAttemptReadsAccepted(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	w := s.StartWorker(t, worker.Config{})
	in := s.StartAPI(t, api.Config{TokenMissRate: -1, AttemptRate: -1, MaxUnsettledPerStudent: -1})
	st := apptest.NewStudents(t, s, "unfolded", 1)[0]
	c := st.On(in.URL)
	q := s.Quizzes[0]
	for k := range readmodel.PageSize + 1 { // one more than the model's page
		if _, err := c.SubmitAttempt(t.Context(), q.ID.String(), apptest.AnswersFor(q, 1),
			client.WithIdempotencyKey(fmt.Sprintf("unfolded-%d", k))); err != nil {
			t.Fatal(err)
		}
	}
	s.WaitDrained(t, time.Minute)
	w.Stop()

	// The next attempt: in the stream, stored by hand as a writer would,
	// and folded by nobody.
	a, err := c.SubmitAttempt(t.Context(), q.ID.String(), apptest.AnswersFor(q, len(q.Questions)),
		client.WithIdempotencyKey("unfolded-last"))
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.MustParse(a.AttemptID)
	pub, err := s.Log.Attempt(t.Context(), st.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.InsertAttempts(t.Context(), []store.Attempt{worker.Row(pub.Seq, pub.Event)}); err != nil {
		t.Fatal(err)
	}

	got, err := c.Attempt(t.Context(), a.AttemptID)
	if err != nil || got.Status != client.StatusAccepted {
		t.Errorf("the unfolded attempt by id: %+v, %v; want accepted", got, err)
	}
	page, err := c.Attempts(t.Context(), client.AttemptsQuery{QuizID: q.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Attempts) == 0 || page.Attempts[0].AttemptID != a.AttemptID || page.Attempts[0].Status != client.StatusAccepted {
		t.Errorf("the filtered list's newest: %+v; want %s accepted", page.Attempts[:min(1, len(page.Attempts))], a.AttemptID)
	}
	if f := fallbacks(t, in.App.Registry); f["filter"] == 0 {
		t.Errorf("fallbacks %v: the filtered list did not go to PostgreSQL, so the test shows nothing", f)
	}
	p, err := c.Progress(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, course := range p.Courses {
		if n, want := course.Attempts, readmodel.PageSize+1; course.CourseID == q.CourseID.String() && n != want {
			t.Errorf("progress counts %d attempts of the course, want the %d folded", n, want)
		}
	}
}
