package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// counter returns the value of a counter of the instance's registry, the
// series whose labels include every pair of labels (0 when absent).
func counter(t testing.TB, in *apptest.Instance, name string, labels ...string) float64 {
	t.Helper()
	families, err := in.App.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metric
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// A NUL or another control character in a signup or login field is a 400
// (PostgreSQL refuses a NUL in text: SQLSTATE 22021, which was a 500),
// found before any password is hashed or anything stored.
func TestControlCharactersAreBadInput(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	anon := apptest.Client(in.URL)
	apptest.Signup(t, in.URL, "ctl@example.com")
	hashed := counter(t, in, "quizstream_api_password_hashes_total", "result", "hashed")
	for _, tc := range []struct {
		path string
		body map[string]string
	}{
		{"/api/v1/signup", map[string]string{"email": "nul\x00@example.com", "name": "N", "password": "password1"}},
		{"/api/v1/signup", map[string]string{"email": "nul@example.com", "name": "N\x00", "password": "password1"}},
		{"/api/v1/signup", map[string]string{"email": "nul@example.com", "name": "Bell\x07", "password": "password1"}},
		{"/api/v1/signup", map[string]string{"email": "nul@example.com", "name": "Line\nbreak", "password": "password1"}},
		{"/api/v1/signup", map[string]string{"email": "nul@example.com", "name": "C1\u0085", "password": "password1"}},
		{"/api/v1/signup", map[string]string{"email": "nul@example.com", "name": "N", "password": "pass\x00word"}},
		{"/api/v1/login", map[string]string{"email": "ctl\x00@example.com", "password": "correct horse"}},
		{"/api/v1/login", map[string]string{"email": "ctl@example.com", "password": "correct\x00horse"}},
		{"/api/v1/login", map[string]string{"email": "\x1b[31mctl@example.com", "password": "correct horse"}},
	} {
		r := apptest.PostJSON(t, anon, tc.path, nil, tc.body)
		apptest.CheckError(t, tc.path+" "+strings.ReplaceAll(string(apptest.MustJSON(t, tc.body)), `"`, ``), r, http.StatusBadRequest, "invalid_request")
	}
	if n := storetest.Int(t, s.DB, `SELECT count(*) FROM students`); n != 1 {
		t.Errorf("%d students stored, want 1", n)
	}
	if now := counter(t, in, "quizstream_api_password_hashes_total", "result", "hashed"); now != hashed {
		t.Errorf("%v passwords hashed for requests refused as malformed; want none", now-hashed)
	}
}

// quiz_id set to the nil UUID names no quiz: the list is empty (the store
// reads uuid.Nil as "no filter").
func TestNilQuizFilterMatchesNothing(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	c := apptest.Signup(t, in.URL, "nil@example.com")
	q := s.Quizzes[0]
	if _, err := apptest.Submit(t.Context(), c, q.ID.String(), "k1", apptest.AnswersFor(q, 1)); err != nil {
		t.Fatal(err)
	}
	s.WaitDrained(t, 30*time.Second)
	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "{00000000-0000-0000-0000-000000000000}", "urn:uuid:00000000-0000-0000-0000-000000000000"} {
		page, err := c.Attempts(t.Context(), client.AttemptsQuery{QuizID: id})
		if err != nil || len(page.Attempts) != 0 {
			t.Errorf("quiz_id=%s: %d attempts, %v; want none", id, len(page.Attempts), err)
		}
	}
	if page, err := c.Attempts(t.Context(), client.AttemptsQuery{QuizID: q.ID.String()}); err != nil || len(page.Attempts) != 1 {
		t.Errorf("quiz_id of the quiz: %d attempts, %v; want 1", len(page.Attempts), err)
	}
}

// A malformed JSON body is told what is wrong in JSON's words: which
// field, what it should be, where the syntax breaks; never a Go type.
func TestMalformedJSONSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	c := apptest.Signup(t, in.URL, "json@example.com")
	attempts := "/api/v1/quizzes/" + s.Quizzes[0].ID.String() + "/attempts"
	goNames := []string{"Go ", "struct", "api.", "events.", "Request", "[]", "*", "uuid", "unmarshal", "of type"}
	for _, tc := range []struct {
		path, body string
		says       []string // what the message must mention
	}{
		{"/api/v1/signup", `{"email": 5, "name": "N", "password": "password1"}`, []string{`"email"`, "a string", "a number"}},
		{"/api/v1/login", `{"email": "a@b", "password": ["x"]}`, []string{`"password"`, "a string", "an array"}},
		{"/api/v1/login", `[]`, []string{"an object", "an array"}},
		{"/api/v1/login", `"x"`, []string{"an object", "a string"}},
		{"/api/v1/login", ``, []string{"empty"}},
		{"/api/v1/login", `{"email": "a@b",`, []string{"ends"}},
		{"/api/v1/login", `{"email" "a@b"}`, []string{"invalid character", "byte"}},
		{attempts, `{"answers": {}}`, []string{`"answers"`, "an array", "an object"}},
		{attempts, `{"answers": [{"question_id": 5, "choice_id": "x"}]}`, []string{`"answers.question_id"`, "a string", "a number"}},
		{attempts, `{"answers": [{"question_id": true}]}`, []string{`"answers.question_id"`, "a string"}},
	} {
		r := apptest.Do(t, c, http.MethodPost, tc.path, nil, bytes.NewReader([]byte(tc.body)))
		what := tc.path + " " + tc.body
		apptest.CheckError(t, what, r, http.StatusBadRequest, "invalid_request")
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		json.Unmarshal(r.Body, &e)
		for _, n := range goNames {
			if strings.Contains(e.Error.Message, n) {
				t.Errorf("%s: the message %q names Go (%q)", what, e.Error.Message, n)
			}
		}
		for _, want := range tc.says {
			if !strings.Contains(e.Error.Message, want) {
				t.Errorf("%s: the message %q does not say %q", what, e.Error.Message, want)
			}
		}
	}
}

// Invalid UTF-8 in a body is a 400 before anything is hashed or stored:
// two passwords that differ only in their invalid bytes were read as the
// same string (each byte as U+FFFD) and logged into the same account.
func TestInvalidUTF8IsBadInput(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	anon := apptest.Client(in.URL)
	hashed := counter(t, in, "quizstream_api_password_hashes_total", "result", "hashed")
	header := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/signup", `{"email":"utf8@example.com","name":"U","password":"passw` + "\xff\xfe" + `ord"}`},
		{"/api/v1/signup", `{"email":"utf8` + "\xc0\xc1" + `@example.com","name":"U","password":"password1"}`},
		{"/api/v1/signup", `{"email":"utf8@example.com","name":"` + "\xed\xa0\x80" + `","password":"password1"}`},
		{"/api/v1/login", `{"email":"utf8@example.com","password":"passw` + "\xc0\xc1" + `ord"}`},
	} {
		r := apptest.Do(t, anon, http.MethodPost, tc.path, header, strings.NewReader(tc.body))
		apptest.CheckError(t, tc.path+" "+strings.ToValidUTF8(tc.body, "?"), r, http.StatusBadRequest, "invalid_request")
	}
	if n := storetest.Int(t, s.DB, `SELECT count(*) FROM students`); n != 0 {
		t.Errorf("%d students stored from bodies that are not UTF-8, want none", n)
	}
	if now := counter(t, in, "quizstream_api_password_hashes_total", "result", "hashed"); now != hashed {
		t.Errorf("%v passwords hashed for bodies that are not UTF-8; want none", now-hashed)
	}

	// Not merged: an account whose password is what invalid bytes used to
	// be read as (each byte U+FFFD) is not reached by any invalid bytes,
	// and its password, sent as valid UTF-8, still works.
	merged := "passw\ufffd\ufffdord"
	apptest.ExpectStatus(t, "signup with U+FFFD in the password", http.StatusCreated, func(ctx context.Context) error {
		_, _, err := anon.Signup(ctx, "fffd@example.com", "F", merged)
		return err
	})
	for _, pw := range []string{"passw\xff\xfeord", "passw\xc0\xc1ord", "passw\xef\xbf\xbd\xfford"} {
		body := `{"email":"fffd@example.com","password":"` + pw + `"}`
		r := apptest.Do(t, anon, http.MethodPost, "/api/v1/login", header, strings.NewReader(body))
		apptest.CheckError(t, "login with "+strings.ToValidUTF8(pw, "?"), r, http.StatusBadRequest, "invalid_request")
	}
	apptest.ExpectStatus(t, "login with the stored password", http.StatusOK, func(ctx context.Context) error {
		_, err := anon.Login(ctx, "fffd@example.com", merged)
		return err
	})
	if n := storetest.Int(t, s.DB, `SELECT count(*) FROM students`); n != 1 {
		t.Errorf("%d students stored, want the one valid signup", n)
	}
}
