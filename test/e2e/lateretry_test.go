package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// A re-sent submission gets the original attempt back, within the
// stream's duplicate window and past it; its key with other answers is a
// 422 that changes nothing; another student's same key is theirs alone.
func TestLateRetry(t *testing.T) {
	t.Parallel()
	const window = time.Second
	s := apptest.New(t, streams.StreamConfig{Duplicates: window})
	a := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	clients, ids := apptest.SignupMany(t, a.URL, "late", 2)
	c1, c2 := clients[0], clients[1]
	q0, q1 := s.Quizzes[0], s.Quizzes[1]
	answers := apptest.AnswersFor(q0, 6)
	reversed := slices.Clone(answers)
	slices.Reverse(reversed)
	other := apptest.AnswersFor(q0, 5)
	msgs := func() uint64 { return eventstest.StreamMessages(t, s.JS, s.Stream.Name) }

	orig, err := apptest.Submit(t.Context(), c1, q0.ID.String(), "k1", answers)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if orig.Score != 6 || orig.MaxScore != 10 || orig.StudentID != ids[0] || orig.Status != "accepted" {
		t.Fatalf("submit: %+v", orig)
	}
	if n := msgs(); n != 1 {
		t.Fatalf("stream holds %d messages after one submission", n)
	}

	// retry re-sends the same submission and expects the original back with
	// the stream unchanged.
	retry := func(when string, ans []client.Answer, wantStatus ...string) {
		t.Helper()
		got, err := apptest.Submit(t.Context(), c1, q0.ID.String(), "k1", ans)
		if err != nil {
			t.Fatalf("%s: retry: %v", when, err)
		}
		if err := apptest.SameAttempt(orig, got); err != nil {
			t.Errorf("%s: retry: %v", when, err)
		}
		if !slices.Contains(wantStatus, got.Status) {
			t.Errorf("%s: retry: status %q, want one of %q", when, got.Status, wantStatus)
		}
		if n := msgs(); n != 1 {
			t.Errorf("%s: retry: stream holds %d messages, want 1", when, n)
		}
	}
	// reuse sends the key with another submission and expects 422, read
	// raw to check the error body's shape.
	reuse := func(when string, quiz store.Quiz, ans []client.Answer) {
		t.Helper()
		body, err := json.Marshal(map[string]any{"answers": ans})
		if err != nil {
			t.Fatal(err)
		}
		status, header, raw, err := c1.Do(t.Context(), http.MethodPost, "/api/v1/quizzes/"+quiz.ID.String()+"/attempts",
			http.Header{"Idempotency-Key": {"k1"}}, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := apptest.ErrorShape(status, header, raw, http.StatusUnprocessableEntity, "idempotency_key_reused"); err != nil {
			t.Errorf("%s: key reused: %v", when, err)
		}
		if n := msgs(); n != 1 {
			t.Errorf("%s: key reused: stream holds %d messages, want 1", when, n)
		}
	}

	// Within the duplicate window.
	retry("within the window", answers, "accepted", "recorded")
	retry("within the window, answers reordered", reversed, "accepted", "recorded")
	reuse("within the window, other answers", q0, other)
	reuse("within the window, another quiz", q1, apptest.AnswersFor(q1, 6))
	reuse("within the window, fewer answers", q0, answers[:9])

	// Past the window only the stream's per-subject guard can recognise the key.
	s.WaitDrained(t, 10*time.Second)
	time.Sleep(window + 500*time.Millisecond) // the window is a duration of the server's: nothing to poll
	retry("past the window", answers, "recorded")
	retry("past the window, answers reordered", reversed, "recorded")
	reuse("past the window, other answers", q0, other)
	reuse("past the window, another quiz", q1, apptest.AnswersFor(q1, 6))
	retry("past the window, after the 422s", answers, "recorded")

	// Another student's key is theirs alone.
	theirs, err := apptest.Submit(t.Context(), c2, q0.ID.String(), "k1", other)
	if err != nil {
		t.Fatalf("other student: %v", err)
	}
	if theirs.AttemptID == orig.AttemptID || theirs.StudentID != ids[1] || theirs.Score != 5 || theirs.Status != "accepted" {
		t.Errorf("other student, same key: %+v (first student's: %+v)", theirs, orig)
	}
	if n := msgs(); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}

	// The stored attempts are the originals, untouched by the 422s.
	s.WaitDrained(t, 10*time.Second)
	if n := s.CountAttempts(t); n != 2 {
		t.Errorf("database holds %d attempts, want 2", n)
	}
	var (
		id, quiz    string
		score       int
		hash        []byte
		submittedAt time.Time
	)
	err = s.DB.QueryRow(t.Context(),
		`SELECT id::text, quiz_id::text, score, answers_hash, submitted_at FROM attempts WHERE student_id = $1 AND idempotency_key = 'k1'`,
		ids[0]).Scan(&id, &quiz, &score, &hash, &submittedAt)
	if err != nil {
		t.Fatal(err)
	}
	if id != orig.AttemptID || quiz != q0.ID.String() || score != 6 || !submittedAt.Equal(orig.SubmittedAt) ||
		!bytes.Equal(hash, events.HashAnswers(q0.ID, eventAnswers(answers))) {
		t.Errorf("stored attempt %s quiz %s score %d at %s, want the original %+v", id, quiz, score, submittedAt, orig)
	}
}
