package api_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// Object-level authorization, route by route, the routes read from the
// router itself: a route added without a case here fails the test. Every
// route that needs a token refuses, with 401 and WWW-Authenticate: Bearer,
// no token, malformed Authorization headers, a logged-out token and an
// expired one; student A's token never reaches student B's objects (an
// attempt of B's, stored or still only in the stream, is a 404
// byte-identical to a random id's), and A's own reads hold nothing of B's.
func TestObjectLevelAuthorization(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	w := s.StartWorker(t, worker.Config{})
	anon := apptest.Client(in.URL)
	a := apptest.Signup(t, in.URL, "authz-a@example.com")
	b := apptest.Signup(t, in.URL, "authz-b@example.com")
	studentA, err := a.User(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	studentB, err := b.User(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	q := s.Quizzes[0]
	// B's first attempt is stored; the second, with the worker stopped, is
	// only in the stream (the read-your-writes path).
	stored, err := apptest.Submit(t.Context(), b, q.ID.String(), "b-key-1", apptest.AnswersFor(q, 3))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitDrained(t, 30*time.Second)
	w.Stop()
	pending, err := apptest.Submit(t.Context(), b, q.ID.String(), "b-key-2", apptest.AnswersFor(q, 4))
	if err != nil {
		t.Fatal(err)
	}
	if pending.Status != "accepted" {
		t.Fatalf("B's second attempt is %q, want accepted (unsettled)", pending.Status)
	}
	// A code check of B's, only in the stream (the worker is stopped).
	sumID := store.DemoExerciseSumID.String()
	bCheck, err := b.SubmitCheck(t.Context(), sumID, "python", "print(1)\n", client.WithIdempotencyKey("b-check"))
	if err != nil {
		t.Fatal(err)
	}
	bSecrets := []string{studentB.ID, studentB.Email, stored.AttemptID, pending.AttemptID, bCheck.CheckID}
	// A timed exam session of B's (API v1.1): a timed quiz found through the
	// API, and when this instance takes sessions, B starts one.
	type quizBody struct {
		ID        string `json:"id"`
		TimeLimit *int   `json:"time_limit_s"`
		Questions []struct {
			ID      string `json:"id"`
			Choices []struct {
				ID string `json:"id"`
			} `json:"choices"`
		} `json:"questions"`
	}
	timed := quizBody{ID: q.ID.String()}
	var courses struct {
		Courses []struct {
			ID string `json:"id"`
		} `json:"courses"`
	}
	json.Unmarshal(apptest.Get(t, anon, "/api/v1/courses", nil).Body, &courses)
	for _, course := range courses.Courses {
		var full struct {
			Quizzes []quizBody `json:"quizzes"`
		}
		json.Unmarshal(apptest.Get(t, anon, "/api/v1/courses/"+course.ID, nil).Body, &full)
		for _, qu := range full.Quizzes {
			if qu.TimeLimit != nil && timed.TimeLimit == nil {
				timed = qu
			}
		}
	}
	json.Unmarshal(apptest.Get(t, anon, "/api/v1/quizzes/"+timed.ID, nil).Body, &timed)
	if len(timed.Questions) == 0 || len(timed.Questions[0].Choices) == 0 {
		t.Fatalf("quiz %s has no question to answer", timed.ID)
	}
	sessionsPath := "/api/v1/quizzes/" + timed.ID + "/sessions"
	var bSession struct {
		SessionID string `json:"session_id"`
	}
	if r := apptest.PostJSON(t, b, sessionsPath, http.Header{"Idempotency-Key": {"b-session"}}, nil); r.Status == http.StatusAccepted {
		if err := json.Unmarshal(r.Body, &bSession); err != nil || bSession.SessionID == "" {
			t.Fatalf("B's session: %s", r.Body)
		}
		bSecrets = append(bSecrets, bSession.SessionID)
	} else {
		t.Logf("B could not start a session on quiz %s (%d %s): the session routes are checked with bad credentials and unknown ids only", timed.ID, r.Status, r.Body)
	}
	sessionCase := func(suffix string) (foreign, random []string) {
		random = []string{"/api/v1/sessions/" + uuid.NewString() + suffix, "/api/v1/sessions/not-a-uuid" + suffix}
		if bSession.SessionID != "" {
			foreign = []string{"/api/v1/sessions/" + bSession.SessionID + suffix}
		}
		return foreign, random
	}
	question, choice := timed.Questions[0].ID, timed.Questions[0].Choices[0].ID
	answerSuffix := "/answers/" + question

	// Tokens of A that must not work: logged out, and expired (a row of
	// the tokens table whose lifetime ran out).
	loggedOut, err := anon.Login(t.Context(), "authz-a@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.WithToken(loggedOut).Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	expired := insertToken(t, s, studentA.ID, time.Now().Add(-time.Minute))
	bad := map[string]string{
		"no token":                  "",
		"scheme only":               "Bearer",
		"scheme and a space":        "Bearer ",
		"basic credentials":         "Basic " + base64.StdEncoding.EncodeToString([]byte("authz-a@example.com:correct horse")),
		"another scheme":            "Token " + a.Token(),
		"no scheme":                 a.Token(),
		"token too long":            "Bearer " + a.Token() + "x",
		"token too short":           "Bearer " + a.Token()[:42],
		"not base64url":             "Bearer " + strings.Repeat("!", 43),
		"two tokens":                "Bearer " + a.Token() + " " + a.Token(),
		"logged-out token":          "Bearer " + loggedOut,
		"expired token":             "Bearer " + expired,
		"made-up token":             "Bearer " + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"no space after the scheme": "Bearer" + b.Token(),
	}

	// Every route of the router, with what it takes.
	type route struct {
		public bool   // needs no token: content, accounts, health; names no student's object
		path   string // the path with A's or B's objects filled in
		body   any    // for POSTs
		// foreign, when the route names an object, is the path with B's
		// object in it; random is the same path with an id nobody has.
		foreign, random []string
	}
	attemptPath := "/api/v1/quizzes/" + q.ID.String() + "/attempts"
	cases := map[string]route{
		"GET /livez":                             {public: true},
		"GET /readyz":                            {public: true},
		"GET /api/v1/openapi.yaml":               {public: true},
		"GET /api/v1/courses":                    {public: true},
		"GET /api/v1/courses/:course_id":         {public: true},
		"GET /api/v1/quizzes/:quiz_id":           {public: true},
		"GET /api/v1/exercises/:exercise_id":     {public: true},
		"POST /api/v1/signup":                    {public: true},
		"POST /api/v1/login":                     {public: true},
		"GET /api/v1/user":                       {path: "/api/v1/user"},
		"POST /api/v1/logout":                    {path: "/api/v1/logout"},
		"GET /api/v1/student-progress":           {path: "/api/v1/student-progress"},
		"GET /api/v1/attempts":                   {path: "/api/v1/attempts?quiz_id=" + q.ID.String()},
		"POST /api/v1/quizzes/:quiz_id/attempts": {path: attemptPath, body: map[string]any{"answers": apptest.AnswersFor(q, 3)}},
		"GET /api/v1/attempts/:attempt_id": {
			path:    "/api/v1/attempts/" + stored.AttemptID,
			foreign: []string{"/api/v1/attempts/" + stored.AttemptID, "/api/v1/attempts/" + pending.AttemptID},
			random:  []string{"/api/v1/attempts/" + uuid.NewString(), "/api/v1/attempts/not-a-uuid"},
		},
		"POST /api/v1/quizzes/:quiz_id/sessions": {path: sessionsPath},
		"GET /api/v1/sessions":                   {path: "/api/v1/sessions?quiz_id=" + timed.ID},
		"POST /api/v1/exercises/:exercise_id/checks": {path: "/api/v1/exercises/" + sumID + "/checks",
			body: map[string]any{"language": "python", "source": "print(1)\n"}},
		"GET /api/v1/checks": {path: "/api/v1/checks?exercise_id=" + sumID},
		"GET /api/v1/checks/:check_id": {
			path:    "/api/v1/checks/" + bCheck.CheckID,
			foreign: []string{"/api/v1/checks/" + bCheck.CheckID},
			random:  []string{"/api/v1/checks/" + uuid.NewString(), "/api/v1/checks/not-a-uuid"},
		},
	}
	for key, suffix := range map[string]string{
		"GET /api/v1/sessions/:session_id":                      "",
		"PUT /api/v1/sessions/:session_id/answers/:question_id": answerSuffix,
		"POST /api/v1/sessions/:session_id/submit":              "/submit",
	} {
		rt := route{path: "/api/v1/sessions/" + uuid.NewString() + suffix}
		rt.foreign, rt.random = sessionCase(suffix)
		if strings.HasPrefix(key, "PUT") {
			rt.body = map[string]any{"choice_id": choice, "seq": 1}
		}
		cases[key] = rt
	}
	var routes []string
	for _, r := range in.API.Handler().(*echo.Echo).Routes() {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet // every GET answers HEAD too (TestEveryGetAnswersHead); both are walked
		}
		key := method + " " + r.Path
		if _, ok := cases[key]; !ok {
			t.Errorf("route %s %s has no case in this test: say whether it is public, or how to reach another student's object through it", r.Method, r.Path)
			continue
		}
		routes = append(routes, r.Method+" "+r.Path)
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)

	send := func(c *client.Client, method, path, authorization string, body any) apptest.Response {
		t.Helper()
		h := http.Header{}
		if authorization != "" {
			h.Set("Authorization", authorization)
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(apptest.MustJSON(t, body))
		}
		return apptest.Do(t, c, method, path, h, rd)
	}
	published := eventstest.StreamMessages(t, s.JS, s.Stream.Name)
	var cells, twoXX int
	bearerRoutes, foreignCells := 0, 0
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		tc := cases[strings.Replace(method, http.MethodHead, http.MethodGet, 1)+" "+pattern]
		if tc.public {
			continue
		}
		bearerRoutes++
		// Bad credentials: 401, the challenge header, the error shape.
		for name, authorization := range bad {
			r := send(anon, method, tc.path, authorization, tc.body)
			cells++
			if r.Status >= 200 && r.Status < 300 {
				twoXX++
			}
			what := rt + " with " + name
			if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%s: %d, WWW-Authenticate %q; want 401 with Bearer (%s)", what, r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
				continue
			}
			if method != http.MethodHead {
				apptest.CheckError(t, what, r, http.StatusUnauthorized, "unauthorized")
			}
		}
		// A's token on B's objects: the same 404 as an id nobody has.
		for i, path := range tc.foreign {
			r := send(a, method, path, "", tc.body)
			cells++
			foreignCells++
			if r.Status >= 200 && r.Status < 300 {
				twoXX++
			}
			for _, other := range tc.random {
				o := send(a, method, other, "", tc.body)
				if r.Status != http.StatusNotFound || o.Status != r.Status || !bytes.Equal(r.Body, o.Body) || !sameHeaders(r.Header, o.Header) {
					t.Errorf("%s: B's object %d answered %d %v %q; an unknown id %d %v %q: want the same 404, byte for byte",
						rt, i, r.Status, r.Header, r.Body, o.Status, o.Header, o.Body)
				}
			}
		}
		// A's own reads hold nothing of B's.
		if method != http.MethodGet && method != http.MethodHead {
			continue // below
		}
		r := send(a, method, tc.path, "", nil)
		for _, secret := range bSecrets {
			if bytes.Contains(r.Body, []byte(secret)) {
				t.Errorf("%s as A (%d) shows B's %q: %s", rt, r.Status, secret, r.Body)
			}
		}
	}
	if want := bearerRoutes*len(bad) + foreignCells; twoXX != 0 || cells != want || bearerRoutes < 10 {
		t.Errorf("%d of %d refused requests on %d routes answered 2xx; want 0 of %d on at least 10", twoXX, cells, bearerRoutes, want)
	}
	if n := eventstest.StreamMessages(t, s.JS, s.Stream.Name); n != published {
		t.Errorf("the refused requests published %d attempts", n-published)
	}
	// B's Idempotency-Key and answers under A's token: A's own new attempt.
	mine, err := apptest.Submit(t.Context(), a, q.ID.String(), "b-key-1", apptest.AnswersFor(q, 3))
	if err != nil || mine.StudentID != studentA.ID || mine.AttemptID == stored.AttemptID {
		t.Errorf("A submitting with B's key: %+v, %v; want A's own attempt", mine, err)
	}
	// A's progress counts nothing of B's.
	p, err := a.Progress(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, course := range p.Courses {
		if course.Attempts != 0 {
			t.Errorf("A's progress counts %d attempts in course %s; A has none stored", course.Attempts, course.CourseID)
		}
	}
	// Logout with bad credentials logged nobody out.
	for _, c := range []*client.Client{a, b} {
		if _, err := c.User(t.Context()); err != nil {
			t.Errorf("a token stopped working after the refused requests: %v", err)
		}
	}
}

// sameHeaders reports whether two responses carry the same headers, but
// for the date.
func sameHeaders(a, b http.Header) bool {
	a, b = a.Clone(), b.Clone()
	a.Del("Date")
	b.Del("Date")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// insertToken stores a new token of the student's, valid until expires,
// straight into the database, and returns it.
func insertToken(t testing.TB, s *apptest.Stack, studentID string, expires time.Time) string {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(tok))
	if _, err := s.DB.Exec(t.Context(), `INSERT INTO tokens (token_hash, student_id, expires_at) VALUES ($1, $2, $3)`,
		sum[:], studentID, expires); err != nil {
		t.Fatal(err)
	}
	return tok
}
