package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
)

// Students signs up n students at the API at base, with emails made from
// prefix, and returns a client acting as each; it fails t on any error.
func Students(t testing.TB, base, prefix string, n int) []*client.Client {
	t.Helper()
	out := make([]*client.Client, n)
	for i := range out {
		out[i] = apptest.Signup(t, base, fmt.Sprintf("%s-%d@example.com", prefix, i))
	}
	return out
}

// Submit posts one attempt through c with the Idempotency-Key key (none
// when empty), once: a fault test must see every failure, so nothing is
// retried. It returns the status and, for a 202, the body; err is a
// transport error or an undecodable 202 body.
func Submit(ctx context.Context, c *client.Client, quizID, key string, answers []client.Answer) (int, client.Attempt, error) {
	var out client.Attempt
	body, err := json.Marshal(map[string]any{"answers": answers})
	if err != nil {
		return 0, out, err
	}
	h := http.Header{}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	status, _, raw, err := c.Do(ctx, http.MethodPost, "/api/v1/quizzes/"+url.PathEscape(quizID)+"/attempts", h, bytes.NewReader(body))
	if err == nil && status == http.StatusAccepted {
		err = json.Unmarshal(raw, &out)
	}
	return status, out, err
}

// Read GETs path through c, once, and returns the status and the
// Retry-After header; err is a transport error.
func Read(ctx context.Context, c *client.Client, path string) (int, string, error) {
	status, h, _, err := c.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return 0, "", err
	}
	return status, h.Get("Retry-After"), nil
}

// SubmitRound has each client submit n attempts with fresh
// Idempotency-Keys made from prefix, each sent twice (a client retry), and
// records the 202s in l; anything but 202, a wrong score, or a retry
// answered differently fails t.
func SubmitRound(t testing.TB, s *apptest.Stack, clients []*client.Client, l *Ledger, prefix string, n int) {
	t.Helper()
	for i, c := range clients {
		for j := range n {
			// Two quizzes per student, several attempts each, varied scores:
			// progress counts and best scores are then worth comparing.
			quiz := s.Quizzes[(i*2+j%2)%len(s.Quizzes)]
			right := (3*j + i) % (len(quiz.Questions) + 1)
			key := fmt.Sprintf("%s-%d-%d", prefix, i, j)
			for range 2 {
				status, body, err := Submit(t.Context(), c, quiz.ID.String(), key, apptest.AnswersFor(quiz, right))
				if err != nil || status != http.StatusAccepted {
					t.Fatalf("submit %s: status %d, err %v", key, status, err)
				}
				if body.Score != right || body.MaxScore != len(quiz.Questions) {
					t.Fatalf("submit %s: score %d/%d, want %d/%d", key, body.Score, body.MaxScore, right, len(quiz.Questions))
				}
				if err := l.Add(key, body); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// API is cfg with the per-student limits off: the fault loads drive each
// student far beyond a person's pace, and through outages in which no
// attempt settles (the limits have tests of their own, in api).
func API(cfg api.Config) api.Config {
	cfg.AttemptRate, cfg.MaxUnsettledPerStudent = -1, -1
	return cfg
}
