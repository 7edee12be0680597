package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
)

// Content reads, GET /user, attempt POSTs, progress and an attempts page
// send no statement to PostgreSQL once a token is cached and the student
// is in the read model (their first student read builds their value from
// PostgreSQL once). The instance opens its own store, so the test's own
// queries are not counted.
func TestQueriesPerRead(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	inst := s.StartAPI(t, api.Config{})
	apiStore := inst.App.Store
	c := apptest.Signup(t, inst.URL, "queries@example.com")
	if _, err := c.User(t.Context()); err != nil { // caches the token
		t.Fatal(err)
	}
	if _, err := c.Progress(t.Context()); err != nil { // the student's value in the read model
		t.Fatal(err)
	}

	quiz := s.Quizzes[0]
	_, info, err := c.Quiz(t.Context(), quiz.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	etag := info.ETag
	// status runs one typed call and returns the HTTP status of its one
	// answer; it fails t on a transport error or a retried call.
	status := func(call func(ctx context.Context) error) int {
		t.Helper()
		ctx, statuses := apptest.Statuses(t.Context())
		err := call(ctx)
		got := statuses()
		if len(got) != 1 || (err != nil && client.StatusOf(err) == 0) {
			t.Fatalf("HTTP statuses %v: %v", got, err)
		}
		return got[0]
	}
	const n = 50
	for name, tc := range map[string]struct {
		request func(ctx context.Context, i int) error
		want    int
		queries uint64
	}{
		"content": {func(ctx context.Context, i int) error {
			var err error
			switch i % 4 {
			case 0:
				_, _, err = c.Courses(ctx)
			case 1:
				_, _, err = c.Course(ctx, quiz.CourseID.String())
			case 2:
				_, _, err = c.Quiz(ctx, quiz.ID.String())
			default:
				var info client.CacheInfo
				if _, info, err = c.Quiz(ctx, quiz.ID.String(), client.IfNoneMatch(etag)); err == nil && !info.NotModified {
					err = fmt.Errorf("If-None-Match %s: the quiz was sent again", etag)
				}
			}
			return err
		}, http.StatusOK, 0},
		"user": {func(ctx context.Context, _ int) error {
			_, err := c.User(ctx)
			return err
		}, http.StatusOK, 0},
		"attempt POST": {func(ctx context.Context, i int) error {
			_, err := c.SubmitAttempt(ctx, quiz.ID.String(), apptest.AnswersFor(quiz, i%10), client.WithIdempotencyKey(fmt.Sprintf("q-%d", i)))
			return err
		}, http.StatusAccepted, 0},
		"progress": {func(ctx context.Context, _ int) error {
			_, err := c.Progress(ctx)
			return err
		}, http.StatusOK, 0},
		"attempts page": {func(ctx context.Context, _ int) error {
			_, err := c.Attempts(ctx, client.AttemptsQuery{Limit: 5})
			return err
		}, http.StatusOK, 0},
	} {
		before := apiStore.Queries()
		for i := range n {
			var err error
			code := status(func(ctx context.Context) error { err = tc.request(ctx, i); return err })
			if code == http.StatusNotModified && name == "content" && err == nil {
				code = http.StatusOK // the conditional read, answered as it should be
			}
			if code != tc.want || err != nil {
				t.Fatalf("%s: status %d, want %d (%v)", name, code, tc.want, err)
			}
		}
		if got := apiStore.Queries() - before; got != tc.queries {
			t.Errorf("%d %s requests sent %d statements to PostgreSQL, want %d", n, name, got, tc.queries)
		}
	}
}
