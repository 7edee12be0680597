package client_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/client"
)

var sessionBody = map[string]any{
	"session_id": "s1", "quiz_id": "q1", "student_id": "st1",
	"started_at": "2025-01-02T03:04:05Z", "deadline": "2025-01-02T03:05:05Z", "grace_s": 30, "state": "open",
	"answers":    []any{map[string]any{"question_id": "u1", "choice_id": nil, "seq": 3, "saved_at": "2025-01-02T03:04:06Z"}},
	"attempt_id": nil, "server_time": "2025-01-02T03:04:35Z",
}

// The session calls are retried through 503 and transport errors with
// what makes a retry safe: the start's one Idempotency-Key, the save's
// seq; a cleared answer is sent as null, and the calls' answers decode.
func TestSessionCalls(t *testing.T) {
	srv, f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case n%2 == 0:
			writeError(w, http.StatusServiceUnavailable, client.CodeUnavailable, "0")
		case r.URL.Path == "/api/v1/sessions/s1/answers/u1":
			writeJSON(w, http.StatusAccepted, map[string]any{"question_id": "u1", "choice_id": nil, "seq": 3, "saved_at": "2025-01-02T03:04:06Z"})
		case r.URL.Path == "/api/v1/sessions/s1/submit":
			writeJSON(w, http.StatusAccepted, attemptBody(r))
		case r.URL.Path == "/api/v1/sessions":
			writeJSON(w, http.StatusOK, map[string]any{"sessions": []any{sessionBody}})
		case r.Method == http.MethodPost:
			writeJSON(w, http.StatusAccepted, sessionBody)
		default:
			writeJSON(w, http.StatusOK, sessionBody)
		}
	})
	c := newClient(t, srv.URL, client.Options{Token: "t"})
	ctx := t.Context()

	sess, err := c.StartSession(ctx, "q1")
	if err != nil || sess.SessionID != "s1" || sess.AttemptID != "" || sess.Remaining() != 30*time.Second || len(sess.Answers) != 1 ||
		sess.Answers[0].ChoiceID != nil {
		t.Fatalf("start: %+v, %v", sess, err)
	}
	if _, err := c.StartSession(ctx, "q1", client.WithIdempotencyKey("mine")); err != nil {
		t.Fatal(err)
	}
	saved, err := c.SaveAnswer(ctx, "s1", "u1", nil, 3)
	if err != nil || saved.Seq != 3 || saved.ChoiceID != nil {
		t.Fatalf("save: %+v, %v", saved, err)
	}
	if _, err := c.Session(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if list, err := c.Sessions(ctx, "q1"); err != nil || len(list) != 1 {
		t.Fatalf("sessions: %+v, %v", list, err)
	}
	att, err := c.SubmitSession(ctx, "s1")
	if err != nil || att.Score != 1 {
		t.Fatalf("submit: %+v, %v", att, err)
	}
	hits := f.all()
	if len(hits) != 12 {
		t.Fatalf("%d requests, want each of 6 calls tried twice", len(hits))
	}
	for i := 0; i < len(hits); i += 2 {
		a, b := hits[i], hits[i+1]
		if a.method != b.method || a.path != b.path || a.body != b.body || a.header.Get("Idempotency-Key") != b.header.Get("Idempotency-Key") {
			t.Errorf("a retry differs: %+v and %+v", a, b)
		}
	}
	if k := hits[0].header.Get("Idempotency-Key"); k == "" || hits[2].header.Get("Idempotency-Key") != "mine" {
		t.Errorf("start keys: %q, %q", k, hits[2].header.Get("Idempotency-Key"))
	}
	if hits[4].method != http.MethodPut || hits[4].body != `{"choice_id":null,"seq":3}` {
		t.Errorf("save sent %s %s", hits[4].method, hits[4].body)
	}
	if hits[8].query != "quiz_id=q1" {
		t.Errorf("sessions query %q", hits[8].query)
	}

	// A 409 (the session is over) is not retried.
	srv2, f2 := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusConflict, client.CodeConflict, "")
	})
	c2 := newClient(t, srv2.URL, client.Options{Token: "t"})
	choice := "c1"
	_, err = c2.SaveAnswer(ctx, "s1", "u1", &choice, 4)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeConflict || len(f2.all()) != 1 || f2.all()[0].body != `{"choice_id":"c1","seq":4}` {
		t.Errorf("save after the deadline: %v, %d requests", err, len(f2.all()))
	}
}
