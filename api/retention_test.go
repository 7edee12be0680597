package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// A retry that comes after MaxAge removed its original from the stream
// (and with it the per-attempt subject that guarded it) keeps its promise:
// the same submission is answered with the stored attempt, as it was told
// the first time, and nothing is published; other answers under the key
// are a 422. The lookup is one primary-key statement, made only once the
// stream has removed events.
func TestRetryAfterRetention(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{MaxAge: 2 * time.Second, Duplicates: time.Second})
	a := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	c := apptest.Signup(t, a.URL, "late@example.com")
	if _, err := c.User(t.Context()); err != nil { // caches the token
		t.Fatal(err)
	}
	q, other := s.Quizzes[0], s.Quizzes[1]
	answers := apptest.AnswersFor(q, 6)
	msgs := func() uint64 { return eventstest.StreamMessages(t, s.JS, s.Stream.Name) }

	queries := a.App.Store.Queries()
	orig, err := apptest.Submit(t.Context(), c, q.ID.String(), "k1", answers)
	if err != nil {
		t.Fatal(err)
	}
	if n := a.App.Store.Queries() - queries; n != 0 {
		t.Errorf("a keyed POST on a stream that removed nothing sent %d statements, want 0", n)
	}
	s.WaitDrained(t, 10*time.Second)
	apptest.WaitFor(t, 30*time.Second, "MaxAge to remove the attempt from the stream", func() bool { return msgs() == 0 })

	queries = a.App.Store.Queries()
	got, err := apptest.Submit(t.Context(), c, q.ID.String(), "k1", answers)
	if err != nil {
		t.Fatalf("retry past retention: %v", err)
	}
	if err := apptest.SameAttempt(orig, got); err != nil || got.Status != "recorded" {
		t.Errorf("retry past retention: %+v (%v), want the original %+v, recorded", got, err, orig)
	}
	if n := a.App.Store.Queries() - queries; n != 1 {
		t.Errorf("the retry sent %d statements, want the one primary-key lookup", n)
	}
	for name, tc := range map[string]struct {
		quiz    string
		answers []client.Answer
	}{
		"other answers": {q.ID.String(), apptest.AnswersFor(q, 5)},
		"another quiz":  {other.ID.String(), apptest.AnswersFor(other, 6)},
	} {
		err := apptest.Expect(t.Context(), http.StatusUnprocessableEntity, func(ctx context.Context) error {
			_, err := c.SubmitAttempt(ctx, tc.quiz, tc.answers, client.WithIdempotencyKey("k1"))
			return err
		})
		if err != nil {
			t.Errorf("%s past retention: %v, want 422 idempotency_key_reused", name, err)
		}
	}
	if n := msgs(); n != 0 {
		t.Errorf("the stream holds %d messages: a retry past retention was published again", n)
	}
	if n := s.CountAttempts(t); n != 1 {
		t.Errorf("%d attempts stored, want 1", n)
	}
	// A new key still publishes.
	if _, err := apptest.Submit(t.Context(), c, q.ID.String(), "k2", answers); err != nil || msgs() != 1 {
		t.Errorf("a new key past retention: %v, %d messages", err, msgs())
	}
}
