package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

// With PostgreSQL refusing connections (the database not accepting them,
// SQLSTATE 55000; then not existing, 3D000), and not merely cut off: every
// student read that needs PostgreSQL, login and signup is a 503 with
// Retry-After, never a 500 (an attempt still above the ack floor is the
// stream's to answer);
// a token confirmed before the outage keeps working (GET /user, attempt
// POSTs answered 202); a token never confirmed is a 503 (it cannot be
// checked); the public /readyz says postgres is down without PostgreSQL's
// words, which the operations listener keeps. After the outage every read
// works again.
func TestDatabaseRefusingConnections(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	cfg := s.Config(t)
	cfg.API, cfg.MetricsAddr = true, "127.0.0.1:0"
	// Every request asks PostgreSQL about its token again, so that the
	// fallback to the confirmed session is what answers during the outage.
	cfg.APIConfig = api.Config{ContentReload: -1, TokenCacheTTL: time.Nanosecond}
	in := s.Start(t, cfg)
	c := apptest.Signup(t, in.URL, "outage@example.com")
	q := s.Quizzes[0]
	first, err := apptest.Submit(t.Context(), c, q.ID.String(), "before", apptest.AnswersFor(q, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.User(t.Context()); err != nil { // confirmed by PostgreSQL
		t.Fatal(err)
	}

	u, err := url.Parse(s.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(t.Context(), storetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	terminate := func(db string) {
		t.Helper()
		if _, err := admin.Exec(context.Background(),
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, db); err != nil {
			t.Fatal(err)
		}
	}
	renamed := false
	t.Cleanup(func() { // before the database is dropped
		if renamed {
			admin.Exec(context.Background(), fmt.Sprintf(`ALTER DATABASE %s_gone RENAME TO %s`, name, name))
		}
		admin.Exec(context.Background(), fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS true`, name))
	})

	anon := apptest.Client(in.URL)
	outage := func(phase string) {
		t.Helper()
		for i := range 3 { // a dead pooled connection first, then refused new ones
			what := fmt.Sprintf("%s, round %d: ", phase, i)
			for _, path := range []string{"/api/v1/attempts", "/api/v1/student-progress"} {
				r := apptest.Get(t, c, path, nil)
				apptest.CheckError(t, what+"GET "+path, r, http.StatusServiceUnavailable, "unavailable")
				retryAfter(t, what+"GET "+path, r)
			}
			// An attempt no worker settled (none runs here) is unsettled:
			// the stream answers it, accepted, without PostgreSQL.
			if r := apptest.Get(t, c, "/api/v1/attempts/"+first.AttemptID, nil); r.Status != http.StatusOK ||
				!strings.Contains(string(r.Body), `"status":"accepted"`) {
				t.Errorf("%sGET the unsettled attempt: %d %s; want 200 accepted", what, r.Status, r.Body)
			}
			r := apptest.PostJSON(t, anon, "/api/v1/login", nil, map[string]string{"email": "outage@example.com", "password": "correct horse"})
			apptest.CheckError(t, what+"login", r, http.StatusServiceUnavailable, "unavailable")
			retryAfter(t, what+"login", r)
			r = apptest.PostJSON(t, anon, "/api/v1/signup", nil, map[string]string{"email": fmt.Sprintf("new-%s-%d@example.com", phase, i), "name": "N", "password": "password1"})
			apptest.CheckError(t, what+"signup", r, http.StatusServiceUnavailable, "unavailable")
			r = apptest.Get(t, anon, "/api/v1/user", http.Header{"Authorization": {"Bearer " + madeUpToken()}})
			apptest.CheckError(t, what+"a token never confirmed", r, http.StatusServiceUnavailable, "unavailable")
			// The token confirmed before the outage still counts.
			if r := apptest.Get(t, c, "/api/v1/user", nil); r.Status != http.StatusOK {
				t.Errorf("%sGET /user with a confirmed token: %d %s", what, r.Status, r.Body)
			}
			key := fmt.Sprintf("during-%s-%d", phase, i)
			if _, err := apptest.Submit(t.Context(), c, q.ID.String(), key, apptest.AnswersFor(q, 3)); err != nil {
				t.Errorf("%sattempt POST with a confirmed token: %v", what, err)
			}
		}
		// The public /readyz names postgres, not PostgreSQL's words.
		pub := apptest.Get(t, anon, "/readyz", nil)
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		json.Unmarshal(pub.Body, &body)
		if pub.Status != http.StatusOK || body.Checks["postgres"] != "down" || strings.Contains(string(pub.Body), name) {
			t.Errorf("%s: public /readyz %d %s; want 200 with postgres down and no detail", phase, pub.Status, pub.Body)
		}
		resp, err := http.Get(in.OpsURL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		ops, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(ops), name) {
			t.Errorf("%s: the operations listener's /readyz lost the detail: %s", phase, ops)
		}
	}

	exec(fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS false`, name))
	terminate(name)
	outage("not accepting connections")

	exec(fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s_gone`, name, name))
	renamed = true
	outage("no such database")

	exec(fmt.Sprintf(`ALTER DATABASE %s_gone RENAME TO %s`, name, name))
	renamed = false
	exec(fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS true`, name))
	apptest.WaitFor(t, 30*time.Second, "student reads after the outage", func() bool {
		return apptest.Get(t, c, "/api/v1/attempts", nil).Status == http.StatusOK
	})
}
