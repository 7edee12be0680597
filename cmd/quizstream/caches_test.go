package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

// etagOf returns the ETag and body title an instance serves for a quiz.
func etagOf(t testing.TB, base, quizID string) (string, string) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/quizzes/" + quizID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var q struct {
		Title string `json:"title"`
	}
	if err := jsonDecode(resp, &q); err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("ETag"), q.Title
}

// A content change reaches every API instance (separate processes) through
// the content-changed notice; the periodic reload is disabled, so nothing
// else could explain it.
func TestContentChangeReachesEveryInstance(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	noReload := "CONTENT_RELOAD=-1s"
	instances := []string{s.spawnAPI(t, noReload), s.spawnAPI(t, noReload)}
	quiz := s.Quizzes[0]
	original, title := etagOf(t, instances[0], quiz.ID.String())
	if other, _ := etagOf(t, instances[1], quiz.ID.String()); other != original || original == "" {
		t.Fatalf("instances disagree before any change: %q vs %q", original, other)
	}

	// Any content write, then its notice.
	if _, err := s.Store.Pool().Exec(t.Context(), `UPDATE quizzes SET title = 'Edited' WHERE id = $1`, quiz.ID); err != nil {
		t.Fatal(err)
	}
	if err := events.Notify(s.NC, events.SubjectContentChanged, nil); err != nil {
		t.Fatal(err)
	}
	for i, base := range instances {
		waitFor(t, 10*time.Second, fmt.Sprintf("instance %d to serve the edit", i), func() bool {
			etag, got := etagOf(t, base, quiz.ID.String())
			return etag != original && got == "Edited"
		})
	}

	// `quizstream seed` restores the demo content and tells every instance.
	seed := s.spawn(t, "seed")
	if err := seed.Wait(); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for i, base := range instances {
		waitFor(t, 10*time.Second, fmt.Sprintf("instance %d to serve the seeded content again", i), func() bool {
			etag, got := etagOf(t, base, quiz.ID.String())
			return etag == original && got == title
		})
	}
}

// A logout on one instance stops the token on every other (a separate
// process) at once, although their token caches would trust it for an hour.
func TestLogoutReachesEveryInstance(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	long := "TOKEN_CACHE_TTL=1h"
	a, b := s.spawnAPI(t, long), s.spawnAPI(t, long)
	onA := signup(t, a, "logout-everywhere@example.com")
	onB := &client{base: b, token: onA.token, http: httpClient}
	if code := doJSON(t, onB, "GET", "/api/v1/user", nil, nil, nil); code != http.StatusOK {
		t.Fatalf("user on b: %d", code) // b now caches the token
	}
	if code := doJSON(t, onA, "POST", "/api/v1/logout", nil, nil, nil); code != http.StatusNoContent {
		t.Fatalf("logout on a: %d", code)
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "b to refuse the revoked token", func() bool {
		return doJSON(t, onB, "GET", "/api/v1/user", nil, nil, nil) == http.StatusUnauthorized
	})
	t.Logf("revocation reached the other instance in %s", time.Since(start).Round(time.Millisecond))
	if code, _, _ := onB.submit(s.Quizzes[0].ID.String(), "after-logout", nil); code != http.StatusUnauthorized {
		t.Fatalf("attempt with a revoked token: %d, want 401", code)
	}
}

// Content reads, GET /user and attempt POSTs send no statement to
// PostgreSQL once a token is cached; progress and an attempts page send one
// each.
func TestQueriesPerRead(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	apiStore, err := store.Open(t.Context(), store.Config{URL: s.DBURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apiStore.Close)
	own := *s
	own.Store = apiStore // counted apart from the test's own queries
	a := own.startAPI(t, api.Config{})
	c := signup(t, a.URL, "queries@example.com")
	doJSON(t, c, "GET", "/api/v1/user", nil, nil, nil) // caches the token

	quiz := s.Quizzes[0]
	etag, _ := etagOf(t, a.URL, quiz.ID.String())
	const n = 50
	for name, tc := range map[string]struct {
		request func(i int) int
		want    int
		queries uint64
	}{
		"content": {func(i int) int {
			switch i % 4 {
			case 0:
				return doJSON(t, c, "GET", "/api/v1/courses", nil, nil, nil)
			case 1:
				return doJSON(t, c, "GET", "/api/v1/courses/"+quiz.CourseID.String(), nil, nil, nil)
			case 2:
				return doJSON(t, c, "GET", "/api/v1/quizzes/"+quiz.ID.String(), nil, nil, nil)
			}
			if code := doJSON(t, c, "GET", "/api/v1/quizzes/"+quiz.ID.String(), map[string]string{"If-None-Match": etag}, nil, nil); code != http.StatusNotModified {
				return code
			}
			return http.StatusOK
		}, http.StatusOK, 0},
		"user": {func(int) int { return doJSON(t, c, "GET", "/api/v1/user", nil, nil, nil) }, http.StatusOK, 0},
		"attempt POST": {func(i int) int {
			code, _, err := c.submit(quiz.ID.String(), fmt.Sprintf("q-%d", i), answersFor(quiz, i%10))
			if err != nil {
				t.Fatal(err)
			}
			return code
		}, http.StatusAccepted, 0},
		"progress":      {func(int) int { return doJSON(t, c, "GET", "/api/v1/student-progress", nil, nil, nil) }, http.StatusOK, n},
		"attempts page": {func(int) int { return doJSON(t, c, "GET", "/api/v1/attempts?limit=5", nil, nil, nil) }, http.StatusOK, n},
	} {
		before := apiStore.Queries()
		for i := range n {
			if code := tc.request(i); code != tc.want {
				t.Fatalf("%s: status %d, want %d", name, code, tc.want)
			}
		}
		if got := apiStore.Queries() - before; got != tc.queries {
			t.Errorf("%d %s requests sent %d statements to PostgreSQL, want %d", n, name, got, tc.queries)
		}
	}
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
