package faults_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
)

// An API instance starts while PostgreSQL is unreachable: it serves
// content from the copy kept in NATS (the same bytes, the same ETags),
// grades attempts against it, and is in rotation. A token it has never
// seen cannot be checked without the database: such a POST is a 503 to
// retry (docs/operations.md, "PostgreSQL down"), which an instance that
// confirmed the token before the cut answers 202; once the database
// returns, the new instance learns the token and takes the same retry.
func TestAPIStartsWithoutPostgreSQL(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	proxy, cut := faults.Proxied(t, s)
	before := cut.StartAPI(t, api.Config{}) // saves the content copy as it loads
	c := apptest.Signup(t, before.URL, "nodb@example.com")
	if _, err := c.User(t.Context()); err != nil { // confirmed by the first instance
		t.Fatal(err)
	}
	anon := apptest.Client(before.URL)
	_, want, err := anon.Quiz(t.Context(), s.Quizzes[0].ID.String())
	if err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	after := cut.StartAPI(t, api.Config{}) // fails t when it cannot start
	anonAfter := apptest.Client(after.URL)
	q, got, err := anonAfter.Quiz(t.Context(), s.Quizzes[0].ID.String())
	if err != nil || got.ETag != want.ETag || len(q.Questions) != len(s.Quizzes[0].Questions) {
		t.Fatalf("content from an instance started without PostgreSQL: %v, ETag %q, want %q", err, got.ETag, want.ETag)
	}
	if r := apptest.Get(t, anonAfter, "/readyz", nil); r.Status != http.StatusOK {
		t.Errorf("/readyz of an instance started without PostgreSQL: %d %s", r.Status, r.Body)
	}

	quiz := s.Quizzes[0]
	answers := apptest.AnswersFor(quiz, 4)
	onAfter := apptest.Client(after.URL).WithToken(c.Token())
	path := "/api/v1/quizzes/" + quiz.ID.String() + "/attempts"
	r := apptest.PostJSON(t, onAfter, path, http.Header{"Idempotency-Key": {"cut"}}, map[string]any{"answers": answers})
	apptest.CheckError(t, "a token the new instance never saw, PostgreSQL down", r, http.StatusServiceUnavailable, "unavailable")

	first, err := apptest.Submit(t.Context(), c, quiz.ID.String(), "cut", answers) // c speaks to the first instance
	if err != nil || first.Score != 4 {
		t.Fatalf("the instance that confirmed the token before the cut: %+v, %v", first, err)
	}

	proxy.Restore()
	var again client.Attempt
	apptest.WaitFor(t, 20*time.Second, "the new instance to learn the token once PostgreSQL is back", func() bool {
		again, err = apptest.Submit(t.Context(), onAfter, quiz.ID.String(), "cut", answers)
		return err == nil
	})
	if err := apptest.SameAttempt(first, again); err != nil {
		t.Errorf("the retry on the new instance: %v", err)
	}
	apptest.ExpectStatus(t, "GET /user on the new instance, PostgreSQL back", http.StatusOK, func(ctx context.Context) error {
		_, err := onAfter.User(ctx)
		return err
	})
}
