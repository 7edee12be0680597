package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

// Signup validates its bounds and refuses a taken email in any case;
// login issues a new token each time; logout revokes the token presented,
// and only it.
func TestAccounts(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{})
	anon := apptest.Client(a.URL)
	post := func(path string, body any) apptest.Response {
		t.Helper()
		return apptest.PostJSON(t, anon, path, nil, body)
	}
	type signupBody struct {
		Student client.Student `json:"student"`
		Token   string         `json:"token"`
	}

	// Validation, including the bounds themselves.
	long := func(n int) string { return strings.Repeat("a", n) }
	email254 := long(254-len("@example.com")) + "@example.com"
	for _, tc := range []struct {
		name                  string
		email, pwd, full      string
		status                int
		code                  string
		omitEmail, omitPasswd bool
	}{
		{name: "email without @", email: "nobody.example.com", pwd: "password1", full: "N", status: 400, code: "invalid_request"},
		{name: "email over 254", email: "a" + email254, pwd: "password1", full: "N", status: 400, code: "invalid_request"},
		{name: "email of 254", email: email254, pwd: "password1", full: "N", status: 201},
		{name: "email missing", omitEmail: true, pwd: "password1", full: "N", status: 400, code: "invalid_request"},
		{name: "password of 7", email: "p7@example.com", pwd: long(7), full: "N", status: 400, code: "invalid_request"},
		{name: "password of 8", email: "p8@example.com", pwd: long(8), full: "N", status: 201},
		{name: "password of 128", email: "p128@example.com", pwd: long(128), full: "N", status: 201},
		{name: "password of 129", email: "p129@example.com", pwd: long(129), full: "N", status: 400, code: "invalid_request"},
		{name: "password missing", email: "pm@example.com", omitPasswd: true, full: "N", status: 400, code: "invalid_request"},
		{name: "name empty", email: "n0@example.com", pwd: "password1", full: "", status: 400, code: "invalid_request"},
		{name: "name of 1", email: "n1@example.com", pwd: "password1", full: "N", status: 201},
		{name: "name of 100", email: "n100@example.com", pwd: "password1", full: long(100), status: 201},
		{name: "name of 101", email: "n101@example.com", pwd: "password1", full: long(101), status: 400, code: "invalid_request"},
	} {
		// Raw, because the typed Signup always sends all three fields.
		req := map[string]string{"name": tc.full}
		if !tc.omitEmail {
			req["email"] = tc.email
		}
		if !tc.omitPasswd {
			req["password"] = tc.pwd
		}
		r := post("/api/v1/signup", req)
		if tc.status == http.StatusCreated {
			var out signupBody
			if r.Status != http.StatusCreated || json.Unmarshal(r.Body, &out) != nil || out.Token == "" || out.Student.Email != tc.email {
				t.Errorf("signup, %s: %d %s, want 201 with the student and a token", tc.name, r.Status, r.Body)
			}
			continue
		}
		apptest.CheckError(t, "signup, "+tc.name, r, tc.status, tc.code)
	}
	// A refused signup creates nobody.
	if students := storetest.Int(t, s.DB, `SELECT count(*) FROM students`); students != 5 {
		t.Errorf("%d students after 5 valid signups among the cases", students)
	}

	// A good signup, then the same email taken again, in any case.
	start := time.Now().Add(-time.Second)
	var su signupBody
	if err := apptest.Expect(t.Context(), http.StatusCreated, func(ctx context.Context) (err error) {
		su.Student, su.Token, err = anon.Signup(ctx, "Ada@Example.com", "Ada", "analytical")
		return err
	}); err != nil {
		t.Fatalf("signup: %v", err)
	}
	if _, err := uuid.Parse(su.Student.ID); err != nil || su.Student.Name != "Ada" || su.Student.Email != "Ada@Example.com" ||
		su.Student.CreatedAt.Before(start) || su.Student.CreatedAt.Location() != time.UTC || su.Token == "" {
		t.Errorf("signup: %+v", su)
	}
	for _, email := range []string{"Ada@Example.com", "ada@example.com", "ADA@EXAMPLE.COM"} {
		apptest.CheckError(t, "signup with "+email, post("/api/v1/signup", map[string]string{"email": email, "name": "Eve", "password": "password1"}),
			http.StatusConflict, "conflict")
	}

	// Login.
	login := func(email, pwd string) apptest.Response {
		return post("/api/v1/login", map[string]string{"email": email, "password": pwd})
	}
	apptest.CheckError(t, "login, wrong password", login("Ada@Example.com", "analytical!"), 401, "unauthorized")
	apptest.CheckError(t, "login, unknown email", login("nobody@example.com", "analytical"), 401, "unauthorized")
	apptest.CheckError(t, "login, no password", post("/api/v1/login", map[string]string{"email": "Ada@Example.com"}), 400, "invalid_request")
	var tokens []string
	for _, email := range []string{"Ada@Example.com", "ada@example.com"} {
		var token string
		if err := apptest.Expect(t.Context(), http.StatusOK, func(ctx context.Context) (err error) {
			token, err = anon.Login(ctx, email, "analytical")
			return err
		}); err != nil || token == "" {
			t.Fatalf("login as %s: %q %v", email, token, err)
		}
		tokens = append(tokens, token)
	}
	if tokens[0] == tokens[1] || tokens[0] == su.Token {
		t.Errorf("logins issued the same token twice: %q", tokens)
	}

	// GET /user with each token.
	for _, tok := range append([]string{su.Token}, tokens...) {
		var st client.Student
		err := apptest.Expect(t.Context(), http.StatusOK, func(ctx context.Context) (err error) {
			st, err = anon.WithToken(tok).User(ctx)
			return err
		})
		if err != nil || st.ID != su.Student.ID || st.Email != su.Student.Email || st.Name != "Ada" || !st.CreatedAt.Equal(su.Student.CreatedAt) {
			t.Errorf("GET /user: %+v %v, want %+v", st, err, su.Student)
		}
	}
	apptest.CheckError(t, "GET /user without a token", apptest.Get(t, anon, "/api/v1/user", nil), 401, "unauthorized")

	// Logout revokes the token presented, and only it.
	c := anon.WithToken(tokens[0])
	if r := apptest.Do(t, c, http.MethodPost, "/api/v1/logout", nil, nil); r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("logout: %d %q", r.Status, r.Body)
	}
	apptest.CheckError(t, "GET /user after logout", apptest.Get(t, c, "/api/v1/user", nil), 401, "unauthorized")
	apptest.ExpectStatus(t, "submit after logout", http.StatusUnauthorized, func(ctx context.Context) error {
		_, err := c.SubmitAttempt(ctx, s.Quizzes[0].ID.String(), apptest.AnswersFor(s.Quizzes[0], 1), client.WithIdempotencyKey("after-logout"))
		return err
	})
	apptest.ExpectStatus(t, "second logout with the revoked token", http.StatusUnauthorized, c.Logout)
	apptest.ExpectStatus(t, "GET /user with another token of the same student after logout", http.StatusOK, func(ctx context.Context) error {
		_, err := anon.WithToken(tokens[1]).User(ctx)
		return err
	})
}
