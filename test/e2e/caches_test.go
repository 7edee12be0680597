package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
)

// A content change reaches every API instance (separate processes) through
// the content-changed notice; the periodic reload is disabled, so nothing
// else could explain it.
func TestContentChangeReachesEveryInstance(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	noReload := "CONTENT_RELOAD=-1s"
	var instances []*client.Client
	for range 2 {
		_, base := s.SpawnAPI(t, "", noReload)
		instances = append(instances, apptest.Client(base))
	}
	quiz := s.Quizzes[0]
	original, title := etagOf(t, instances[0], quiz.ID.String())
	if other, _ := etagOf(t, instances[1], quiz.ID.String()); other != original || original == "" {
		t.Fatalf("instances disagree before any change: %q vs %q", original, other)
	}

	// Any content write, then its notice.
	if _, err := s.DB.Exec(t.Context(), `UPDATE quizzes SET title = 'Edited' WHERE id = $1`, quiz.ID); err != nil {
		t.Fatal(err)
	}
	if err := events.Notify(s.NC, events.SubjectContentChanged, nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range instances {
		apptest.WaitFor(t, 10*time.Second, fmt.Sprintf("instance %d to serve the edit", i), func() bool {
			etag, got := etagOf(t, c, quiz.ID.String())
			return etag != original && got == "Edited"
		})
	}

	// `quizstream seed` restores the demo content and tells every instance.
	seed := s.Spawn(t, "seed")
	if err := seed.Wait(); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for i, c := range instances {
		apptest.WaitFor(t, 10*time.Second, fmt.Sprintf("instance %d to serve the seeded content again", i), func() bool {
			etag, got := etagOf(t, c, quiz.ID.String())
			return etag == original && got == title
		})
	}
}

// A logout on one instance stops the token on every other (a separate
// process) at once, although their token caches would trust it for an hour.
func TestLogoutReachesEveryInstance(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	long := "TOKEN_CACHE_TTL=1h"
	_, a := s.SpawnAPI(t, "", long)
	_, b := s.SpawnAPI(t, "", long)
	onA := apptest.Signup(t, a, "logout-everywhere@example.com")
	onB := apptest.Client(b).WithToken(onA.Token())
	user := func(ctx context.Context) error {
		_, err := onB.User(ctx)
		return err
	}
	if err := apptest.Expect(t.Context(), http.StatusOK, user); err != nil {
		t.Fatalf("user on b: %v", err) // b now caches the token
	}
	if err := apptest.Expect(t.Context(), http.StatusNoContent, onA.Logout); err != nil {
		t.Fatalf("logout on a: %v", err)
	}
	start := time.Now()
	apptest.WaitFor(t, 5*time.Second, "b to refuse the revoked token", func() bool {
		return apptest.Expect(t.Context(), http.StatusUnauthorized, user) == nil
	})
	t.Logf("revocation reached the other instance in %s", time.Since(start).Round(time.Millisecond))
	if err := apptest.Expect(t.Context(), http.StatusUnauthorized, func(ctx context.Context) error {
		_, err := onB.SubmitAttempt(ctx, s.Quizzes[0].ID.String(), nil, client.WithIdempotencyKey("after-logout"))
		return err
	}); err != nil {
		t.Fatalf("attempt with a revoked token: %v", err)
	}
}
