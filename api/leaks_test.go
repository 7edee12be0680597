package api_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
)

// lockedBuffer is a log sink goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The log of a whole flow at debug level (an API and a worker: signup,
// logins right and wrong, attempt POSTs, every read, bad requests that
// carry the password, logout, the logged-out token used again, an outage
// of the event log) holds no password and no token.
func TestNoSecretsInTheLog(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	var logged lockedBuffer
	cfg := s.Config(t)
	cfg.API, cfg.Workers = true, 1
	cfg.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.APIConfig = api.Config{ContentReload: -1, PublishTimeout: 500 * time.Millisecond}
	in := s.Start(t, cfg)

	const password, wrong = "s3cret-horse-battery", "wr0ng-horse-battery"
	anon := apptest.Client(in.URL)
	_, signupToken, err := anon.Signup(t.Context(), "leak@example.com", "Leak", password)
	if err != nil {
		t.Fatal(err)
	}
	c := anon.WithToken(signupToken)
	loginToken, err := anon.Login(t.Context(), "leak@example.com", password)
	if err != nil {
		t.Fatal(err)
	}
	c2 := anon.WithToken(loginToken)
	if _, err := anon.Login(t.Context(), "leak@example.com", wrong); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v", err)
	}
	q := s.Quizzes[0]
	a, err := apptest.Submit(t.Context(), c, q.ID.String(), "leak-1", apptest.AnswersFor(q, 2))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitDrained(t, 30*time.Second)
	for _, path := range []string{"/api/v1/user", "/api/v1/attempts", "/api/v1/attempts/" + a.AttemptID, "/api/v1/student-progress", "/api/v1/courses"} {
		if r := apptest.Get(t, c2, path, nil); r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	// Bad requests that carry secrets.
	apptest.Do(t, anon, http.MethodPost, "/api/v1/login", nil, strings.NewReader(`{"email": "leak@example.com", "password": "`+password+`",}`))
	apptest.Do(t, anon, http.MethodPost, "/api/v1/signup", nil, strings.NewReader(`{"email": "leak@example.com", "name": "L", "password": "`+password+`"}`))
	apptest.Get(t, anon, "/api/v1/user", http.Header{"Authorization": {"Basic " + loginToken}})
	apptest.Get(t, anon, "/api/v1/user", http.Header{"Authorization": {"Bearer " + loginToken + "x"}})
	if err := c.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	apptest.Get(t, c, "/api/v1/user", nil)
	// The event log down: the debug lines of failed publishes and reads.
	s.NATS.Shutdown()
	s.NATS.WaitForShutdown()
	apptest.PostJSON(t, c2, "/api/v1/quizzes/"+q.ID.String()+"/attempts", http.Header{"Idempotency-Key": {"leak-2"}}, map[string]any{"answers": apptest.AnswersFor(q, 1)})
	apptest.Get(t, c2, "/api/v1/attempts", nil)
	in.Stop()

	out := logged.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "api: publish failed") {
		t.Fatalf("the log captured too little to mean anything:\n%s", out)
	}
	for name, secret := range map[string]string{
		"the password": password, "the wrong password": wrong, "the signup token": signupToken, "the login token": loginToken,
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %s:\n%s", name, out)
		}
	}
}
