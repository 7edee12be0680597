package exams_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
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

// The rules of starting, saving and submitting, one case each, each
// checked against what was stored: the sessions, answers and attempts in
// PostgreSQL once the workers drained, and the events in the stream.
func TestRules(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	now := time.Now().UTC()
	limited := addExam(t, s, "limited", func(q *store.Quiz) { q.MaxSessions = 2 })
	notYet := addExam(t, s, "not-yet", func(q *store.Quiz) { q.OpensAt = now.Add(time.Hour) })
	closed := addExam(t, s, "closed", func(q *store.Quiz) { q.OpensAt, q.ClosesAt = now.Add(-2*time.Hour), now.Add(-time.Hour) })
	closing := addExam(t, s, "closing", func(q *store.Quiz) { q.ClosesAt = now.Add(5 * time.Minute) })
	exam := addExam(t, s, "plain", nil)
	other := addExam(t, s, "other", nil)
	a := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	xl := examLog(t, s)
	students := apptest.NewStudents(t, s, "rules", 8)

	// stored waits for the workers, then counts a student's rows.
	type rows struct{ sessions, answers, finals, attempts, events int }
	stored := func(st apptest.Student) rows {
		t.Helper()
		waitExamsStored(t, s, xl, 30*time.Second)
		s.WaitDrained(t, 30*time.Second)
		msgs, err := xl.Events(t.Context(), events.ExamStudentSubjects(st.ID), 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		return rows{
			sessions: count(t, s, `SELECT count(*) FROM exam_sessions WHERE student_id = $1`, st.ID),
			answers:  count(t, s, `SELECT count(*) FROM exam_answers a JOIN exam_sessions s ON s.id = a.session_id WHERE s.student_id = $1`, st.ID),
			finals:   count(t, s, `SELECT count(*) FROM exam_finals f JOIN exam_sessions s ON s.id = f.session_id WHERE s.student_id = $1`, st.ID),
			attempts: count(t, s, `SELECT count(*) FROM attempts WHERE student_id = $1`, st.ID),
			events:   len(msgs),
		}
	}
	check := func(st apptest.Student, want rows) {
		t.Helper()
		if got := stored(st); got != want {
			t.Errorf("stored %+v, want %+v", got, want)
		}
	}
	// raw sends one request and checks the error body.
	raw := func(c *client.Client, method, path string, header http.Header, body any, status int, code string) {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		var r apptest.Response
		if rd != nil {
			r = apptest.Do(t, c, method, path, header, rd)
		} else {
			r = apptest.Do(t, c, method, path, header, nil)
		}
		if err := apptest.ErrorShape(r.Status, r.Header, r.Body, status, code); err != nil {
			t.Errorf("%s %s: %v", method, path, err)
		}
	}

	t.Run("max_sessions", func(t *testing.T) {
		st := students[0]
		c := st.On(a.URL)
		for i := range 2 {
			sess, err := c.StartSession(t.Context(), limited.ID.String())
			if err != nil {
				t.Fatalf("start %d: %v", i+1, err)
			}
			if _, err := c.SubmitSession(t.Context(), sess.SessionID); err != nil {
				t.Fatalf("submit %d: %v", i+1, err)
			}
		}
		raw(c, http.MethodPost, "/api/v1/quizzes/"+limited.ID.String()+"/sessions", nil, nil, http.StatusForbidden, "forbidden")
		check(st, rows{sessions: 2, finals: 2, attempts: 2, events: 4})
	})

	t.Run("window", func(t *testing.T) {
		st := students[1]
		c := st.On(a.URL)
		raw(c, http.MethodPost, "/api/v1/quizzes/"+notYet.ID.String()+"/sessions", nil, nil, http.StatusForbidden, "forbidden")
		raw(c, http.MethodPost, "/api/v1/quizzes/"+closed.ID.String()+"/sessions", nil, nil, http.StatusForbidden, "forbidden")
		check(st, rows{})
		// Inside the window the deadline is the earlier of the time limit
		// (10 minutes) and the closing time (in 5).
		sess, err := c.StartSession(t.Context(), closing.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		if want := closing.ClosesAt.Truncate(time.Microsecond); !sess.Deadline.Equal(want) {
			t.Errorf("deadline %s, want the closing time %s", sess.Deadline, want)
		}
		sess, err = c.StartSession(t.Context(), exam.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		if want := sess.StartedAt.Add(10 * time.Minute); !sess.Deadline.Equal(want) {
			t.Errorf("deadline %s, want started_at + 10m = %s", sess.Deadline, want)
		}
		check(st, rows{sessions: 2, events: 2})
	})

	t.Run("second start while one is open", func(t *testing.T) {
		st := students[2]
		c := st.On(a.URL)
		first, err := c.StartSession(t.Context(), exam.ID.String(), client.WithIdempotencyKey("k1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SaveAnswer(t.Context(), first.SessionID, exam.Questions[0].ID.String(), ptr(choice(exam, 0, 1)), 1); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"k2", "k1", ""} {
			var opts []client.SubmitOption
			if key != "" {
				opts = append(opts, client.WithIdempotencyKey(key))
			}
			var again client.Session
			apptest.ExpectStatus(t, "start again with key "+key, http.StatusAccepted, func(ctx context.Context) (err error) {
				again, err = c.StartSession(ctx, exam.ID.String(), opts...)
				return err
			})
			if again.SessionID != first.SessionID || !again.StartedAt.Equal(first.StartedAt) || !again.Deadline.Equal(first.Deadline) ||
				again.State != client.SessionOpen || len(again.Answers) != 1 {
				t.Errorf("start again with key %q: %+v, want the open session %+v with its answer", key, again, first)
			}
		}
		check(st, rows{sessions: 1, answers: 1, events: 2})
		// The same key names the same session even once it ended, and
		// belongs to its quiz.
		if _, err := c.SubmitSession(t.Context(), first.SessionID); err != nil {
			t.Fatal(err)
		}
		again, err := c.StartSession(t.Context(), exam.ID.String(), client.WithIdempotencyKey("k1"))
		if err != nil || again.SessionID != first.SessionID || again.State != client.SessionSubmitted {
			t.Errorf("start with the key of a submitted session: %+v, %v", again, err)
		}
		raw(c, http.MethodPost, "/api/v1/quizzes/"+other.ID.String()+"/sessions", http.Header{"Idempotency-Key": {"k1"}}, nil,
			http.StatusUnprocessableEntity, "idempotency_key_reused")
		check(st, rows{sessions: 1, answers: 1, finals: 1, attempts: 1, events: 3})
	})

	t.Run("foreign session", func(t *testing.T) {
		owner, stranger := students[3], students[4]
		sess, err := owner.On(a.URL).StartSession(t.Context(), exam.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		c := stranger.On(a.URL)
		path := "/api/v1/sessions/" + sess.SessionID
		raw(c, http.MethodGet, path, nil, nil, http.StatusNotFound, "not_found")
		raw(c, http.MethodPut, path+"/answers/"+exam.Questions[0].ID.String(), nil,
			map[string]any{"choice_id": choice(exam, 0, 0), "seq": 1}, http.StatusNotFound, "not_found")
		raw(c, http.MethodPost, path+"/submit", nil, nil, http.StatusNotFound, "not_found")
		raw(c, http.MethodGet, "/api/v1/sessions/"+uuid.NewString(), nil, nil, http.StatusNotFound, "not_found")
		raw(c, http.MethodGet, "/api/v1/sessions/not-a-uuid", nil, nil, http.StatusNotFound, "not_found")
		if list, err := c.Sessions(t.Context(), ""); err != nil || len(list) != 0 {
			t.Errorf("the stranger's sessions: %v, %v", list, err)
		}
		check(stranger, rows{})
		check(owner, rows{sessions: 1, events: 1})
	})

	t.Run("bad question or choice", func(t *testing.T) {
		st := students[5]
		c := st.On(a.URL)
		sess, err := c.StartSession(t.Context(), exam.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		path := "/api/v1/sessions/" + sess.SessionID + "/answers/"
		q0 := exam.Questions[0].ID.String()
		for _, tc := range []struct {
			question string
			body     any
		}{
			{uuid.NewString(), map[string]any{"choice_id": choice(exam, 0, 0), "seq": 1}},                // unknown question
			{other.Questions[0].ID.String(), map[string]any{"choice_id": choice(other, 0, 0), "seq": 1}}, // another quiz's
			{"not-a-uuid", map[string]any{"choice_id": choice(exam, 0, 0), "seq": 1}},
			{q0, map[string]any{"choice_id": choice(exam, 1, 0), "seq": 1}}, // another question's choice
			{q0, map[string]any{"choice_id": uuid.NewString(), "seq": 1}},
			{q0, map[string]any{"choice_id": "not-a-uuid", "seq": 1}},
			{q0, map[string]any{"choice_id": choice(exam, 0, 0)}},           // no seq
			{q0, map[string]any{"choice_id": choice(exam, 0, 0), "seq": 0}}, // seq not positive
			{q0, map[string]any{"seq": 1}},                                  // no choice_id
			{q0, map[string]any{"choice_id": 7, "seq": 1}},
		} {
			raw(c, http.MethodPut, path+tc.question, nil, tc.body, http.StatusBadRequest, "invalid_request")
		}
		check(st, rows{sessions: 1, events: 1})
	})

	t.Run("untimed POST on a timed quiz", func(t *testing.T) {
		st := students[6]
		c := st.On(a.URL)
		raw(c, http.MethodPost, "/api/v1/quizzes/"+exam.ID.String()+"/attempts", http.Header{"Idempotency-Key": {"x"}},
			map[string]any{"answers": []any{}}, http.StatusConflict, "conflict")
		// And a session of an untimed quiz is refused alike.
		raw(c, http.MethodPost, "/api/v1/quizzes/"+s.Quizzes[0].ID.String()+"/sessions", nil, nil, http.StatusConflict, "conflict")
		check(st, rows{})
	})

	t.Run("save after submit", func(t *testing.T) {
		st := students[7]
		c := st.On(a.URL)
		sess, err := c.StartSession(t.Context(), exam.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		q0 := exam.Questions[0].ID.String()
		if _, err := c.SaveAnswer(t.Context(), sess.SessionID, q0, ptr(choice(exam, 0, 0)), 2); err != nil {
			t.Fatal(err)
		}
		// A lower seq answers the stored answer and changes nothing.
		got, err := c.SaveAnswer(t.Context(), sess.SessionID, q0, ptr(choice(exam, 0, 3)), 1)
		if err != nil || got.Seq != 2 || got.ChoiceID == nil || *got.ChoiceID != choice(exam, 0, 0) {
			t.Errorf("save with a lower seq: %+v, %v; want the stored seq 2", got, err)
		}
		att, err := c.SubmitSession(t.Context(), sess.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		raw(c, http.MethodPut, "/api/v1/sessions/"+sess.SessionID+"/answers/"+q0, nil,
			map[string]any{"choice_id": choice(exam, 0, 1), "seq": 3}, http.StatusConflict, "conflict")
		again, err := c.SubmitSession(t.Context(), sess.SessionID)
		if err != nil || again.AttemptID != att.AttemptID || again.Score != att.Score || !again.SubmittedAt.Equal(att.SubmittedAt) {
			t.Errorf("submit again: %+v, %v; want %+v", again, err, att)
		}
		check(st, rows{sessions: 1, answers: 1, finals: 1, attempts: 1, events: 3})
	})
}
