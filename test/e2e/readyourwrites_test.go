package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/worker"
)

// A student who got a 202 from one API instance sees the attempt at once
// through another instance (a separate process), while no worker runs:
// status accepted, read from the stream; recorded once a worker stored it.
func TestReadYourWritesAcrossInstances(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, events.StreamConfig{})
	writer := s.StartAPI(t, api.Config{})
	_, reader := s.SpawnAPI(t, "")

	aliceOnWriter := apptest.Signup(t, writer.URL, "alice-ryw@example.com")
	var sent []client.Attempt
	for i, q := range []int{0, 1, 0} {
		got, err := apptest.Submit(t.Context(), aliceOnWriter, s.Quizzes[q].ID.String(), fmt.Sprintf("ryw-%d", i), apptest.AnswersFor(s.Quizzes[q], i+2))
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		sent = append(sent, got)
	}
	writer.Stop() // the writing instance is gone before the other reads

	bob := apptest.Signup(t, reader, "bob-ryw@example.com") // someone else sees none of it
	alice := apptest.Client(reader).WithToken(aliceOnWriter.Token())
	page := func(c *client.Client, q client.AttemptsQuery) client.AttemptPage {
		t.Helper()
		var p client.AttemptPage
		if err := apptest.Expect(t.Context(), http.StatusOK, func(ctx context.Context) (err error) {
			p, err = c.Attempts(ctx, q)
			return err
		}); err != nil {
			t.Fatalf("list %+v: %v", q, err)
		}
		return p
	}

	check := func(status string) {
		t.Helper()
		list := page(alice, client.AttemptsQuery{})
		if len(list.Attempts) != len(sent) || list.NextCursor != "" {
			t.Fatalf("list has %d attempts (next %q), want %d", len(list.Attempts), list.NextCursor, len(sent))
		}
		for i, got := range list.Attempts {
			want := sent[len(sent)-1-i] // newest first
			want.Status = status
			if got != want {
				t.Fatalf("list[%d] = %+v, want %+v", i, got, want)
			}
			var one client.Attempt
			if err := apptest.Expect(t.Context(), http.StatusOK, func(ctx context.Context) (err error) {
				one, err = alice.Attempt(ctx, want.AttemptID)
				return err
			}); err != nil || one != want {
				t.Fatalf("get %s: %+v %v, want %+v", want.AttemptID, one, err, want)
			}
			if err := apptest.Expect(t.Context(), http.StatusNotFound, func(ctx context.Context) error {
				_, err := bob.Attempt(ctx, want.AttemptID)
				return err
			}); err != nil {
				t.Fatalf("another student reading it: %v", err)
			}
		}
		q0 := client.AttemptsQuery{QuizID: s.Quizzes[0].ID.String(), Limit: 1}
		first := page(alice, q0)
		if len(first.Attempts) != 1 || first.Attempts[0].AttemptID != sent[2].AttemptID || first.NextCursor == "" {
			t.Fatalf("first page of quiz 0: %+v", first)
		}
		q0.Cursor = first.NextCursor
		if second := page(alice, q0); len(second.Attempts) != 1 || second.Attempts[0].AttemptID != sent[0].AttemptID {
			t.Fatalf("second page of quiz 0: %+v", second)
		}
		if none := page(bob, client.AttemptsQuery{}); len(none.Attempts) != 0 {
			t.Fatalf("bob sees %d attempts", len(none.Attempts))
		}
	}
	check("accepted")
	if n := s.CountAttempts(t); n != 0 {
		t.Fatalf("%d attempts stored with no worker running", n)
	}

	w := s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 20*time.Second)
	w.Stop()
	check("recorded")

	// Stored and not yet stored attempts merge into one order.
	fourth, err := apptest.Submit(t.Context(), alice, s.Quizzes[2].ID.String(), "ryw-3", apptest.AnswersFor(s.Quizzes[2], 9))
	if err != nil {
		t.Fatalf("fourth submit: %v", err)
	}
	list := page(alice, client.AttemptsQuery{Limit: 2})
	if len(list.Attempts) != 2 || list.Attempts[0] != fourth || list.Attempts[1].AttemptID != sent[2].AttemptID ||
		list.Attempts[1].Status != "recorded" || list.NextCursor == "" {
		t.Fatalf("mixed page: %+v", list)
	}
}
