package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// A student who got a 202 from one API instance sees the attempt at once
// through another instance (a separate process), while no worker runs:
// status accepted, read from the stream; recorded once a worker stored it.
func TestReadYourWritesAcrossInstances(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
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

// A 202 carries its place in the stream (Quizstream-Position), a retry
// the original's; a read on another instance (a separate process, no
// worker running) that sends the position back sees every attempt up to
// it, and one with a malformed position is served as one without.
func TestPositionReadsAcrossInstances(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	writer := s.StartAPI(t, api.Config{})
	_, reader := s.SpawnAPI(t, "")
	alice := apptest.Signup(t, writer.URL, "alice-position@example.com")
	onReader := apptest.Client(reader).WithToken(alice.Token())

	var last uint64
	var positions []string
	for i := range 10 {
		q := s.Quizzes[i%3]
		path := "/api/v1/quizzes/" + q.ID.String() + "/attempts"
		body := fmt.Sprintf(`{"answers":[{"question_id":%q,"choice_id":%q}]}`, q.Questions[0].ID, q.Questions[0].Choices[0].ID)
		key := http.Header{"Idempotency-Key": {fmt.Sprint("position-", i)}}
		status, h, b, err := alice.Do(t.Context(), http.MethodPost, path, key, strings.NewReader(body))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("submit %d: %d %s %v", i, status, b, err)
		}
		pos, err := strconv.ParseUint(h.Get(client.PositionHeader), 10, 64)
		if err != nil || pos <= last {
			t.Fatalf("submit %d: position %q after %d", i, h.Get(client.PositionHeader), last)
		}
		last = pos
		positions = append(positions, h.Get(client.PositionHeader))
		var sent client.Attempt
		if err := json.Unmarshal(b, &sent); err != nil {
			t.Fatal(err)
		}

		at := http.Header{client.PositionHeader: {h.Get(client.PositionHeader)}}
		status, _, b, err = onReader.Do(t.Context(), http.MethodGet, "/api/v1/attempts?limit=100", at, nil)
		var page client.AttemptPage
		if err != nil || status != http.StatusOK || json.Unmarshal(b, &page) != nil {
			t.Fatalf("list after submit %d: %d %s %v", i, status, b, err)
		}
		if len(page.Attempts) != i+1 || page.Attempts[0] != sent {
			t.Fatalf("list after submit %d at position %d: %d attempts, newest %+v; want %d, newest %+v",
				i, pos, len(page.Attempts), page.Attempts, i+1, sent)
		}
		status, _, b, err = onReader.Do(t.Context(), http.MethodGet, "/api/v1/attempts/"+sent.AttemptID, at, nil)
		var got client.Attempt
		if err != nil || status != http.StatusOK || json.Unmarshal(b, &got) != nil || got.AttemptID != sent.AttemptID {
			t.Fatalf("get after submit %d: %d %s %v", i, status, b, err)
		}
	}

	q := s.Quizzes[0]
	body := fmt.Sprintf(`{"answers":[{"question_id":%q,"choice_id":%q}]}`, q.Questions[0].ID, q.Questions[0].Choices[0].ID)
	status, h, b, err := alice.Do(t.Context(), http.MethodPost, "/api/v1/quizzes/"+q.ID.String()+"/attempts",
		http.Header{"Idempotency-Key": {"position-0"}}, strings.NewReader(body))
	if err != nil || status != http.StatusAccepted || h.Get(client.PositionHeader) != positions[0] {
		t.Fatalf("a retry: %d %s, position %q; want the original's %s", status, b, h.Get(client.PositionHeader), positions[0])
	}
	status, _, b, err = onReader.Do(t.Context(), http.MethodGet, "/api/v1/attempts?limit=100",
		http.Header{client.PositionHeader: {"not a number"}}, nil)
	if err != nil || status != http.StatusOK || strings.Count(string(b), `"attempt_id"`) != 10 {
		t.Fatalf("a malformed position: %d %s %v", status, b, err)
	}
}
