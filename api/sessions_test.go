package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// demoQuiz returns a quiz of the demo content by id.
func demoQuiz(t testing.TB, id string) store.Quiz {
	t.Helper()
	for _, c := range store.DemoContent(store.DefaultDemo) {
		for _, q := range c.Quizzes {
			if q.ID.String() == id {
				return q
			}
		}
	}
	t.Fatalf("no demo quiz %s", id)
	return store.Quiz{}
}

// A timed quiz says so in its body and in its course's entry, with the
// v1.1 fields; an untimed quiz's bodies carry none of them.
func TestTimedQuizContent(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{})
	anon := apptest.Client(a.URL)
	sprint, exam := store.DemoSprintID.String(), store.DemoExamID.String()

	fields := func(path string) map[string]json.RawMessage {
		t.Helper()
		r := apptest.Get(t, anon, path, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, r.Status)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		id                  string
		limit, maxSessions  string
		opensAt, closesAtAt string
	}{
		{sprint, "60", "null", "null", "null"},
		{exam, "1200", "2", "null", "null"},
	} {
		m := fields("/api/v1/quizzes/" + tc.id)
		if string(m["time_limit_s"]) != tc.limit || string(m["max_sessions"]) != tc.maxSessions ||
			string(m["opens_at"]) != tc.opensAt || string(m["closes_at"]) != tc.closesAtAt {
			t.Errorf("quiz %s: time_limit_s %s, max_sessions %s, opens_at %s, closes_at %s", tc.id,
				m["time_limit_s"], m["max_sessions"], m["opens_at"], m["closes_at"])
		}
	}
	untimed := fields("/api/v1/quizzes/" + s.Quizzes[0].ID.String())
	for _, k := range []string{"time_limit_s", "opens_at", "closes_at", "max_sessions"} {
		if _, ok := untimed[k]; ok {
			t.Errorf("an untimed quiz carries %s", k)
		}
	}
	var course struct {
		Quizzes []map[string]json.RawMessage `json:"quizzes"`
	}
	if err := json.Unmarshal(apptest.Get(t, anon, "/api/v1/courses/"+demoQuiz(t, sprint).CourseID.String(), nil).Body, &course); err != nil {
		t.Fatal(err)
	}
	n := len(course.Quizzes)
	if n < 3 {
		t.Fatalf("the course of the timed quizzes lists %d quizzes", n)
	}
	sprintEntry, examEntry, untimedEntry := course.Quizzes[n-2], course.Quizzes[n-1], course.Quizzes[0]
	if string(sprintEntry["time_limit_s"]) != "60" || string(examEntry["time_limit_s"]) != "1200" || string(examEntry["max_sessions"]) != "2" {
		t.Errorf("the timed entries: %s, %s", apptest.MustJSON(t, sprintEntry), apptest.MustJSON(t, examEntry))
	}
	if !keysAre(toAny(sprintEntry), "id", "title", "question_count", "time_limit_s", "opens_at", "closes_at", "max_sessions") {
		t.Errorf("a timed course entry: %s", apptest.MustJSON(t, sprintEntry))
	}
	if !keysAre(toAny(untimedEntry), "id", "title", "question_count") {
		t.Errorf("an untimed course entry: %s", apptest.MustJSON(t, untimedEntry))
	}
}

func toAny(m map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// A session as the HTTP contract shapes it, through its whole life: start,
// saves (a clear, a stale seq), reads on another instance at once, submit,
// and the attempt it became in the attempts list and in progress. Start,
// save and submit send PostgreSQL no statement.
func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	writer := s.StartAPI(t, api.Config{})
	reader := s.StartAPI(t, api.Config{Exams: api.ExamConfig{Grace: 5 * time.Second}})
	clients, ids := apptest.SignupMany(t, writer.URL, "lifecycle", 1)
	c := clients[0]
	onReader := apptest.Client(reader.URL).WithToken(c.Token())
	quiz := demoQuiz(t, store.DemoSprintID.String())
	if _, err := c.User(t.Context()); err != nil { // caches the token
		t.Fatal(err)
	}
	before := writer.App.Store.Queries()

	r := apptest.Do(t, c, http.MethodPost, "/api/v1/quizzes/"+quiz.ID.String()+"/sessions", http.Header{"Idempotency-Key": {"s1"}}, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatal(err)
	}
	if !keysAre(raw, "session_id", "quiz_id", "student_id", "started_at", "deadline", "grace_s", "state", "answers", "attempt_id", "server_time") {
		t.Errorf("session body: %s", r.Body)
	}
	var sess client.Session
	if err := json.Unmarshal(r.Body, &sess); err != nil {
		t.Fatal(err)
	}
	if raw["attempt_id"] != nil || sess.State != "open" || len(sess.Answers) != 0 || sess.GraceS != 30 || sess.StudentID != ids[0] ||
		!sess.Deadline.Equal(sess.StartedAt.Add(time.Minute)) || sess.ServerTime.Sub(sess.StartedAt) > 5*time.Second ||
		sess.Remaining() <= 50*time.Second {
		t.Errorf("started session: %s", r.Body)
	}

	q0, q1 := quiz.Questions[0].ID.String(), quiz.Questions[1].ID.String()
	right := func(u int) string {
		for _, ch := range quiz.Questions[u].Choices {
			if ch.Correct {
				return ch.ID.String()
			}
		}
		return ""
	}
	put := func(question string, body string) apptest.Response {
		t.Helper()
		return apptest.Do(t, c, http.MethodPut, "/api/v1/sessions/"+sess.SessionID+"/answers/"+question, nil, strings.NewReader(body))
	}
	r = put(q0, `{"choice_id":"`+right(0)+`","seq":1}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("save: %d %s", r.Status, r.Body)
	}
	var savedRaw map[string]any
	if err := json.Unmarshal(r.Body, &savedRaw); err != nil || !keysAre(savedRaw, "question_id", "choice_id", "seq", "saved_at") ||
		savedRaw["choice_id"] != right(0) || savedRaw["seq"] != 1.0 {
		t.Errorf("saved answer: %s", r.Body)
	}
	r = put(q1, `{"choice_id":"`+right(1)+`","seq":2}`)
	r = put(q1, `{"choice_id":null,"seq":3}`) // cleared
	if r.Status != http.StatusAccepted || !bytes.Contains(r.Body, []byte(`"choice_id":null`)) {
		t.Errorf("clear: %d %s", r.Status, r.Body)
	}
	r = put(q0, `{"choice_id":null,"seq":1}`) // a seq at or below the stored one changes nothing
	if r.Status != http.StatusAccepted || !bytes.Contains(r.Body, []byte(right(0))) {
		t.Errorf("stale save: %d %s, want the stored answer", r.Status, r.Body)
	}

	// At once on the other instance, which has no worker behind it yet.
	got, err := onReader.Session(t.Context(), sess.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Answers) != 2 || got.Answers[0].QuestionID != q0 || got.Answers[0].ChoiceID == nil || *got.Answers[0].ChoiceID != right(0) ||
		got.Answers[1].QuestionID != q1 || got.Answers[1].ChoiceID != nil || got.Answers[1].Seq != 3 {
		t.Errorf("session read on another instance: %+v", got.Answers)
	}
	list, err := onReader.Sessions(t.Context(), quiz.ID.String())
	if err != nil || len(list) != 1 || list[0].SessionID != sess.SessionID || len(list[0].Answers) != 2 {
		t.Errorf("sessions on another instance: %+v, %v", list, err)
	}

	att, err := c.SubmitSession(t.Context(), sess.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if att.Score != 1 || att.MaxScore != len(quiz.Questions) || att.Status != client.StatusAccepted || att.QuizID != quiz.ID.String() {
		t.Errorf("submitted: %+v", att)
	}
	if got := writer.App.Store.Queries() - before; got != 0 {
		t.Errorf("start, saves and submit sent %d statements to PostgreSQL, want 0", got)
	}
	read, err := onReader.Attempt(t.Context(), att.AttemptID)
	if err != nil || apptest.SameAttempt(att, read) != nil {
		t.Errorf("the attempt on another instance: %+v, %v", read, err)
	}
	// The submission's 202 carries its place in the attempts stream, as an
	// attempt POST's does, the same on a retry; a read that sends it back
	// sees the attempt on another instance.
	resubmit := apptest.Do(t, c, http.MethodPost, "/api/v1/sessions/"+sess.SessionID+"/submit", nil, nil)
	pos := resubmit.Header.Get(client.PositionHeader)
	if n, err := strconv.ParseUint(pos, 10, 64); resubmit.Status != http.StatusAccepted || err != nil || n == 0 {
		t.Errorf("a submission again: %d %s, position %q", resubmit.Status, resubmit.Body, pos)
	}
	if r := apptest.Get(t, onReader, "/api/v1/attempts/"+att.AttemptID, http.Header{client.PositionHeader: {pos}}); r.Status != http.StatusOK {
		t.Errorf("the attempt at position %s on another instance: %d %s", pos, r.Status, r.Body)
	}
	got, err = onReader.Session(t.Context(), sess.SessionID)
	if err != nil || got.State != client.SessionSubmitted || got.AttemptID != att.AttemptID {
		t.Errorf("submitted session on another instance: %+v, %v", got, err)
	}

	// A worker stores it all; the session reads the same from the database.
	s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 30*time.Second)
	apptest.WaitFor(t, 30*time.Second, "the session to be stored", func() bool {
		return storetest.Int(t, s.DB, `SELECT count(*) FROM exam_finals`) == 1
	})
	again, err := onReader.Session(t.Context(), sess.SessionID)
	if err != nil || again.State != client.SessionSubmitted || len(again.Answers) != 2 || again.Answers[1].Seq != 3 {
		t.Errorf("stored session: %+v, %v", again, err)
	}
	progress, err := c.Progress(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cp := range progress.Courses {
		if cp.CourseID == quiz.CourseID.String() {
			found = cp.Attempts == 1 && cp.BestScores[quiz.ID.String()] == 1 && cp.QuizzesTotal == store.DefaultDemo.Quizzes+2
		}
	}
	if !found {
		t.Errorf("progress does not count the exam's attempt: %+v", progress)
	}
	// Another instance's configured grace, on a session it starts.
	other, err := onReader.StartSession(t.Context(), store.DemoExamID.String())
	if err != nil || other.GraceS != 5 {
		t.Errorf("grace on an instance configured with 5s: %+v, %v", other, err)
	}
}

// The session endpoints answer the HTTP contract's errors in its order.
func TestSessionErrors(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{})
	clients, _ := apptest.SignupMany(t, a.URL, "errors", 1)
	c := clients[0]
	anon := apptest.Client(a.URL)
	sprint := store.DemoSprintID.String()
	sess, err := c.StartSession(t.Context(), sprint)
	if err != nil {
		t.Fatal(err)
	}
	q0 := demoQuiz(t, sprint).Questions[0].ID.String()
	save := "/api/v1/sessions/" + sess.SessionID + "/answers/" + q0
	long := strings.Repeat("k", events.MaxIdempotencyKey+1)
	for _, tc := range []struct {
		what         string
		c            *client.Client
		method, path string
		header       http.Header
		body         string
		status       int
		code         string
	}{
		{"start without a token", anon, http.MethodPost, "/api/v1/quizzes/" + sprint + "/sessions", nil, "", 401, "unauthorized"},
		{"read without a token", anon, http.MethodGet, "/api/v1/sessions/" + sess.SessionID, nil, "", 401, "unauthorized"},
		{"start an unknown quiz", c, http.MethodPost, "/api/v1/quizzes/" + q0 + "/sessions", nil, "", 404, "not_found"},
		{"start with a key too long", c, http.MethodPost, "/api/v1/quizzes/" + sprint + "/sessions", http.Header{"Idempotency-Key": {long}}, "", 400, "invalid_request"},
		{"start an untimed quiz", c, http.MethodPost, "/api/v1/quizzes/" + s.Quizzes[0].ID.String() + "/sessions", nil, "", 409, "conflict"},
		{"save another type", c, http.MethodPut, save, http.Header{"Content-Type": {"text/plain"}}, `{"choice_id":null,"seq":1}`, 415, "unsupported_media_type"},
		{"save a malformed body", c, http.MethodPut, save, nil, `{"seq":`, 400, "invalid_request"},
		{"save to an unknown session", c, http.MethodPut, "/api/v1/sessions/" + q0 + "/answers/" + q0, nil, `{"choice_id":null,"seq":1}`, 404, "not_found"},
		{"malformed before unknown", c, http.MethodPut, "/api/v1/sessions/" + q0 + "/answers/" + q0, nil, `[]`, 400, "invalid_request"},
		{"submit an unknown session", c, http.MethodPost, "/api/v1/sessions/" + q0 + "/submit", nil, "", 404, "not_found"},
		{"delete a session", c, http.MethodDelete, "/api/v1/sessions/" + sess.SessionID, nil, "", 405, "method_not_allowed"},
	} {
		var r apptest.Response
		if tc.body != "" {
			r = apptest.Do(t, tc.c, tc.method, tc.path, tc.header, strings.NewReader(tc.body))
		} else {
			r = apptest.Do(t, tc.c, tc.method, tc.path, tc.header, nil)
		}
		apptest.CheckError(t, tc.what, r, tc.status, tc.code)
	}
	if n := storetest.Int(t, s.DB, `SELECT count(*) FROM exam_sessions`); n != 0 {
		t.Errorf("%d sessions stored without a worker", n)
	}
	// HEAD answers as GET does.
	if r := apptest.Do(t, c, http.MethodHead, "/api/v1/sessions/"+sess.SessionID, nil, nil); r.Status != http.StatusOK || len(r.Body) != 0 {
		t.Errorf("HEAD session: %d %q", r.Status, r.Body)
	}
	var list struct {
		Sessions []client.Session `json:"sessions"`
	}
	for _, q := range []string{"", "?quiz_id=" + sprint, "?quiz_id=nope", "?quiz_id=" + s.Quizzes[0].ID.String()} {
		r := apptest.Get(t, c, "/api/v1/sessions"+q, nil)
		if err := json.Unmarshal(r.Body, &list); r.Status != 200 || err != nil || list.Sessions == nil {
			t.Errorf("list %q: %d %s", q, r.Status, r.Body)
		}
		if want := map[bool]int{true: 1, false: 0}[q == "" || q == "?quiz_id="+sprint]; len(list.Sessions) != want {
			t.Errorf("list %q: %d sessions, want %d", q, len(list.Sessions), want)
		}
	}
}
