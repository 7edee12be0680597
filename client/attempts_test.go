package client_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/quizstream/quizstream/client"
)

func TestSubmitAttemptKeepsItsKey(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	tries := map[string]int{}
	srv, f := newFake(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		tries[key]++
		n := tries[key]
		mu.Unlock()
		if n <= 2 { // the first try outcome unknown, the second refused: both retried
			if n == 1 {
				hangUp(w)
			} else {
				writeError(w, http.StatusServiceUnavailable, client.CodeUnavailable, "")
			}
			return
		}
		writeJSON(w, http.StatusAccepted, attemptBody(r))
	})
	c := newClient(t, srv.URL, client.Options{Token: "tok"})
	answers := []client.Answer{{QuestionID: "qu1", ChoiceID: "ch1"}, {QuestionID: "qu2", ChoiceID: "ch2"}}

	first, err := c.SubmitAttempt(t.Context(), "q1", answers)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.SubmitAttempt(t.Context(), "q1", nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.SubmitAttempt(t.Context(), "q1", answers, client.WithIdempotencyKey(first.IdempotencyKey))
	if err != nil {
		t.Fatal(err)
	}

	if first.IdempotencyKey == "" || first.IdempotencyKey == second.IdempotencyKey {
		t.Fatalf("keys of two logical submissions: %q and %q", first.IdempotencyKey, second.IdempotencyKey)
	}
	if again.IdempotencyKey != first.IdempotencyKey || again.AttemptID != first.AttemptID {
		t.Errorf("a resubmission with the first key: %+v, first %+v", again, first)
	}
	if first.Tries != 3 || second.Tries != 3 || again.Tries != 1 {
		t.Errorf("tries: %d, %d, %d; want 3, 3, 1 (the resubmission's key was answered before)", first.Tries, second.Tries, again.Tries)
	}
	if first.AttemptID != "att-"+first.IdempotencyKey || first.Score != 1 || first.MaxScore != 2 ||
		first.Status != client.StatusAccepted || first.SubmittedAt.Nanosecond() != 123456000 {
		t.Errorf("decoded attempt: %+v", first)
	}
	want := map[string]string{
		first.IdempotencyKey:  `{"answers":[{"question_id":"qu1","choice_id":"ch1"},{"question_id":"qu2","choice_id":"ch2"}]}`,
		second.IdempotencyKey: `{"answers":[]}`,
	}
	hits := f.all()
	if len(hits) != 7 {
		t.Fatalf("%d requests, want 3 + 3 + 1", len(hits))
	}
	for i, h := range hits {
		key := h.header.Get("Idempotency-Key")
		if i < 3 && key != first.IdempotencyKey || i >= 3 && i < 6 && key != second.IdempotencyKey || i == 6 && key != first.IdempotencyKey {
			t.Errorf("request %d carried key %q", i, key)
		}
		if h.method != http.MethodPost || h.path != "/api/v1/quizzes/q1/attempts" || h.body != want[key] {
			t.Errorf("request %d: %s %s %s", i, h.method, h.path, h.body)
		}
		if h.header.Get("Content-Type") != "application/json" || h.header.Get("Authorization") != "Bearer tok" {
			t.Errorf("request %d headers: %v", i, h.header)
		}
	}
}

// Reads of attempts send back the highest position the student's 202s
// carried, and nothing before the first; another student's client sends
// its own.
func TestReadsSendBackThePosition(t *testing.T) {
	t.Parallel()
	positions := []string{"7", "5", "12"} // the answers may come out of order
	srv, f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set(client.PositionHeader, positions[0])
			positions = positions[1:]
			writeJSON(w, http.StatusAccepted, attemptBody(r))
			return
		}
		if r.URL.Path == "/api/v1/attempts" {
			writeJSON(w, http.StatusOK, map[string]any{"attempts": []any{}, "next_cursor": nil})
			return
		}
		writeJSON(w, http.StatusOK, attemptBody(r))
	})
	c := newClient(t, srv.URL, client.Options{Token: "a"})
	other := c.WithToken("b")
	read := func(c *client.Client) {
		t.Helper()
		if _, err := c.Attempts(t.Context(), client.AttemptsQuery{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Attempt(t.Context(), "x"); err != nil {
			t.Fatal(err)
		}
	}
	read(c)
	for range 3 {
		if _, err := c.SubmitAttempt(t.Context(), "q1", nil); err != nil {
			t.Fatal(err)
		}
	}
	read(c)
	read(other)
	var sent []string
	for _, h := range f.all() {
		if h.method == http.MethodGet {
			sent = append(sent, h.header.Get(client.PositionHeader))
		}
	}
	if want := []string{"", "", "12", "12", "", ""}; !slices.Equal(sent, want) {
		t.Fatalf("positions sent on reads: %q, want %q", sent, want)
	}
}
