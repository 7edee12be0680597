package exams_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// Races at the edge of the deadline, with real short deadlines end to end
// and, where it helps, the API's clock under the test's control.
func TestRacesAtTheEdge(t *testing.T) {
	// Not parallel: see doc.go.
	// The limit leaves the 40 racing sessions time to start and save
	// before their deadline on a slow machine (the race detector, others'
	// jobs): it is only waited for once.
	const (
		limit = 20 * time.Second
		grace = 1
	)
	s := apptest.New(t, streams.StreamConfig{})
	short := addExam(t, s, "edge-short", func(q *store.Quiz) { q.TimeLimit, q.Grace = limit, seconds(grace) })
	long := addExam(t, s, "edge-long", func(q *store.Quiz) { q.Grace = seconds(grace) })
	// The timers fire at deadline + grace exactly (no settling delay), so
	// that the deadline's finalization meets the submits head on. One
	// instance's clock runs a second late: to it, a submit that the
	// deadline's timer races is still in time.
	lagging := &clock{}
	lagging.Shift(-time.Second)
	exact := s.StartAPI(t, api.Config{TokenMissRate: -1, Exams: api.ExamConfig{Settle: -1}})
	late := s.StartAPI(t, api.Config{TokenMissRate: -1, Exams: api.ExamConfig{Settle: -1, Now: lagging.Now}})
	s.StartWorker(t, worker.Config{})
	xl := examLog(t, s)

	// oneAttempt checks that a session ended once, as its final says, and
	// that the attempt a client got (when not nil) is the stored one.
	oneAttempt := func(t *testing.T, st apptest.Student, sessionID string, got *client.Attempt) events.ExamFinalized {
		t.Helper()
		fs := finals(t, xl, []uuid.UUID{uuid.MustParse(sessionID)}, []uuid.UUID{st.ID})[uuid.MustParse(sessionID)]
		if len(fs) != 1 {
			t.Fatalf("session %s: %d finalizations, want 1", sessionID, len(fs))
		}
		f := fs[0]
		var rows, score int
		var at time.Time
		if err := s.DB.QueryRow(t.Context(), `SELECT count(*), max(score), max(submitted_at) FROM attempts WHERE student_id = $1`, st.ID).
			Scan(&rows, &score, &at); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || score != f.Score || !at.Equal(f.SubmittedAt) {
			t.Errorf("session %s: %d attempts, score %d at %s; want 1 as finalized: %d at %s", sessionID, rows, score, at, f.Score, f.SubmittedAt)
		}
		if got != nil && (got.AttemptID != f.AttemptID.String() || got.Score != f.Score || !got.SubmittedAt.Equal(f.SubmittedAt)) {
			t.Errorf("session %s: submit answered %+v, but the session was finalized as %+v", sessionID, *got, f)
		}
		return f
	}

	t.Run("submit meets the deadline", func(t *testing.T) {
		t.Parallel()
		const n = 20
		people := apptest.NewStudents(t, s, "race", 2*n)
		type race struct {
			st      apptest.Student
			api     *apptest.Instance
			session client.Session
			offset  time.Duration // of the submit, from deadline + grace
			got     client.Attempt
			err     error
		}
		races := make([]*race, 2*n)
		var wg sync.WaitGroup
		for i := range races {
			r := &race{st: people[i], api: exact, offset: time.Duration(i%n)*50*time.Millisecond - 300*time.Millisecond}
			if i >= n {
				r.api = late
			}
			races[i] = r
			wg.Go(func() {
				c := r.st.On(r.api.URL)
				if r.session, r.err = c.StartSession(t.Context(), short.ID.String()); r.err != nil {
					return
				}
				for u := range 5 {
					if _, r.err = c.SaveAnswer(t.Context(), r.session.SessionID, short.Questions[u].ID.String(), ptr(choice(short, u, correct(short, u))), int64(u+1)); r.err != nil {
						return
					}
				}
				// The timer fires at deadline + grace in real time; to the
				// late instance, the submits around it are all in time.
				cutoff := r.session.Deadline.Add(grace * time.Second)
				time.Sleep(time.Until(cutoff.Add(r.offset)))
				r.err = apptest.Expect(t.Context(), http.StatusAccepted, func(ctx context.Context) (err error) {
					r.got, err = c.SubmitSession(ctx, r.session.SessionID)
					return err
				})
			})
		}
		wg.Wait()
		for _, r := range races {
			if r.err != nil {
				t.Fatalf("session %s (deadline %s): %v", r.session.SessionID, r.session.Deadline, r.err)
			}
		}
		waitExamsStored(t, s, xl, 30*time.Second)
		s.WaitDrained(t, 30*time.Second)
		by := map[string]int{}
		for _, r := range races {
			f := oneAttempt(t, r.st, r.session.SessionID, &r.got)
			by[f.By]++
			if r.got.Score != 5 {
				t.Errorf("session %s: score %d, want its 5 saved answers", r.session.SessionID, r.got.Score)
			}
			wantAt := r.session.Deadline
			if f.By == events.FinalizedByStudent {
				wantAt = f.SubmittedAt
				if !f.SubmittedAt.Before(r.session.Deadline.Add(grace * time.Second)) {
					t.Errorf("session %s: submitted by the student at %s, after its cutoff", r.session.SessionID, f.SubmittedAt)
				}
			}
			if !f.SubmittedAt.Equal(wantAt) {
				t.Errorf("session %s: finalized by %s at %s, want %s", r.session.SessionID, f.By, f.SubmittedAt, wantAt)
			}
		}
		t.Logf("%d sessions finalized by the student's submit, %d by the deadline", by[events.FinalizedByStudent], by[events.FinalizedByDeadline])
		if by[events.FinalizedByStudent] == 0 || by[events.FinalizedByDeadline] == 0 {
			t.Errorf("the submits and the deadline never met: %v", by)
		}
	})

	// A save counts when it reaches the API before deadline + grace, by the
	// API's clock: one microsecond before it is stored and graded, at it
	// is 409.
	t.Run("save at deadline plus grace, by the API's clock", func(t *testing.T) {
		t.Parallel()
		clk := &clock{}
		in := s.StartAPI(t, api.Config{TokenMissRate: -1, Exams: api.ExamConfig{Now: clk.Now}})
		st := apptest.NewStudents(t, s, "clock", 1)[0]
		c := st.On(in.URL)
		sess, err := c.StartSession(t.Context(), long.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		cutoff := sess.Deadline.Add(grace * time.Second)
		q0, q1 := long.Questions[0].ID.String(), long.Questions[1].ID.String()
		clk.Set(cutoff.Add(-time.Microsecond))
		apptest.ExpectStatus(t, "save just before the cutoff", http.StatusAccepted, func(ctx context.Context) error {
			_, err := c.SaveAnswer(ctx, sess.SessionID, q0, ptr(choice(long, 0, correct(long, 0))), 1)
			return err
		})
		clk.Set(cutoff)
		r := apptest.Do(t, c, http.MethodPut, "/api/v1/sessions/"+sess.SessionID+"/answers/"+q1, nil,
			jsonBody(t, map[string]any{"choice_id": choice(long, 1, correct(long, 1)), "seq": 2}))
		if err := apptest.ErrorShape(r.Status, r.Header, r.Body, http.StatusConflict, "conflict"); err != nil {
			t.Errorf("save at the cutoff: %v", err)
		}
		// A submit after the cutoff finalizes the session as its deadline
		// would have, from the saves that counted.
		clk.Set(cutoff.Add(time.Second))
		var got client.Attempt
		apptest.ExpectStatus(t, "submit after the cutoff", http.StatusAccepted, func(ctx context.Context) (err error) {
			got, err = c.SubmitSession(ctx, sess.SessionID)
			return err
		})
		if got.Score != 1 || !got.SubmittedAt.Equal(sess.Deadline) {
			t.Errorf("submit after the cutoff: %+v; want score 1 submitted at the deadline %s", got, sess.Deadline)
		}
		waitExamsStored(t, s, xl, 30*time.Second)
		s.WaitDrained(t, 30*time.Second)
		if f := oneAttempt(t, st, sess.SessionID, &got); f.By != events.FinalizedByDeadline {
			t.Errorf("finalized by %s, want deadline", f.By)
		}
		if n := count(t, s, `SELECT count(*) FROM exam_answers WHERE session_id = $1`, uuid.MustParse(sess.SessionID)); n != 1 {
			t.Errorf("%d answers stored, want the one before the cutoff", n)
		}
	})

	// End to end with a real short deadline: a save 300ms before
	// deadline + grace is in the attempt the deadline makes; one 300ms
	// after is 409.
	t.Run("save at deadline plus grace, in real time", func(t *testing.T) {
		t.Parallel()
		st := apptest.NewStudents(t, s, "real", 1)[0]
		c := st.On(exact.URL)
		sess, err := c.StartSession(t.Context(), short.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		cutoff := sess.Deadline.Add(grace * time.Second)
		time.Sleep(time.Until(cutoff.Add(-300 * time.Millisecond)))
		apptest.ExpectStatus(t, "save 300ms before the cutoff", http.StatusAccepted, func(ctx context.Context) error {
			_, err := c.SaveAnswer(ctx, sess.SessionID, short.Questions[0].ID.String(), ptr(choice(short, 0, correct(short, 0))), 1)
			return err
		})
		time.Sleep(time.Until(cutoff.Add(300 * time.Millisecond)))
		r := apptest.Do(t, c, http.MethodPut, "/api/v1/sessions/"+sess.SessionID+"/answers/"+short.Questions[1].ID.String(), nil,
			jsonBody(t, map[string]any{"choice_id": choice(short, 1, correct(short, 1)), "seq": 2}))
		if err := apptest.ErrorShape(r.Status, r.Header, r.Body, http.StatusConflict, "conflict"); err != nil {
			t.Errorf("save 300ms after the cutoff: %v", err)
		}
		apptest.WaitFor(t, 10*time.Second, "the deadline to finalize the session", func() bool {
			got, err := c.Session(t.Context(), sess.SessionID)
			return err == nil && got.State == client.SessionExpired
		})
		waitExamsStored(t, s, xl, 30*time.Second)
		s.WaitDrained(t, 30*time.Second)
		f := oneAttempt(t, st, sess.SessionID, nil)
		if f.By != events.FinalizedByDeadline || f.Score != 1 || len(f.Answers) != 1 || f.Answers[0].QuestionID != short.Questions[0].ID.String() {
			t.Errorf("finalized as %+v; want by the deadline, from the one save before the cutoff", f)
		}
	})
}
