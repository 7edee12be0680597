package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/retry"
)

// *client.Error is what retry.Do reads a server's Retry-After from.
var _ retry.RetryAfterer = (*client.Error)(nil)

// hit is one request a fake API received.
type hit struct {
	at     time.Time
	method string
	path   string
	query  string
	header http.Header
	body   string
}

// fake is an API that answers with respond(n, ...) to its n-th request
// (from 0) and records every request.
type fake struct {
	mu   sync.Mutex
	hits []hit
}

func newFake(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *fake) {
	t.Helper()
	f := &fake{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body strings.Builder
		if r.Body != nil {
			buf := make([]byte, 4096)
			for {
				n, err := r.Body.Read(buf)
				body.Write(buf[:n])
				if err != nil {
					break
				}
			}
		}
		f.mu.Lock()
		n := len(f.hits)
		f.hits = append(f.hits, hit{time.Now(), r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body.String()})
		f.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, f
}

func (f *fake) all() []hit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hit(nil), f.hits...)
}

// newClient returns a client of url with short pauses between tries. Its
// connections are not reused, so that net/http never replays a request by
// itself (it does on a reused connection) and every retry is the client's.
func newClient(t *testing.T, url string, opts client.Options) *client.Client {
	t.Helper()
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	if opts.Policy == (retry.Policy{}) {
		opts.Policy = retry.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	}
	c := client.New(url, opts)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": "message of " + code}})
}

// hangUp closes the connection without answering: the outcome of the
// request is unknown to the client.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

var (
	quizBody    = map[string]any{"id": "q1", "course_id": "c1", "title": "Quiz", "questions": []any{}}
	studentBody = map[string]any{"id": "s1", "email": "a@example.com", "name": "A", "created_at": "2025-01-02T03:04:05Z"}
)

func attemptBody(r *http.Request) map[string]any {
	return map[string]any{
		"attempt_id": "att-" + r.Header.Get("Idempotency-Key"), "quiz_id": "q1", "student_id": "s1",
		"score": 1, "max_score": 2, "status": "accepted", "submitted_at": "2025-01-02T03:04:05.123456Z",
	}
}

func TestRetriesUnavailableHonouringRetryAfter(t *testing.T) {
	t.Parallel()
	srv, f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			writeError(w, http.StatusServiceUnavailable, client.CodeUnavailable, "1")
			return
		}
		writeJSON(w, http.StatusOK, quizBody)
	})
	c := newClient(t, srv.URL, client.Options{})
	q, _, err := c.Quiz(t.Context(), "q1")
	if err != nil || q.ID != "q1" {
		t.Fatalf("quiz after a 503: %+v, %v", q, err)
	}
	hits := f.all()
	if len(hits) != 2 {
		t.Fatalf("%d requests, want 2", len(hits))
	}
	// The policy's own pause is at most 50ms: only Retry-After explains a second.
	if gap := hits[1].at.Sub(hits[0].at); gap < time.Second {
		t.Errorf("retried after %s, before the Retry-After of 1s", gap)
	}
}

func TestRetriesRateLimited(t *testing.T) {
	t.Parallel()
	srv, f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 2 {
			writeError(w, http.StatusTooManyRequests, client.CodeRateLimited, "")
			return
		}
		writeJSON(w, http.StatusOK, studentBody)
	})
	c := newClient(t, srv.URL, client.Options{Token: "tok"})
	st, err := c.User(t.Context())
	if err != nil || st.Email != "a@example.com" || !st.CreatedAt.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("user after two 429s: %+v, %v", st, err)
	}
	if n := len(f.all()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestRetriesClosedConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		call func(*client.Client) error
	}{
		{"get", func(c *client.Client) error { _, _, err := c.Quiz(t.Context(), "q1"); return err }},
		{"submit", func(c *client.Client) error {
			_, err := c.SubmitAttempt(t.Context(), "q1", []client.Answer{{QuestionID: "a", ChoiceID: "b"}})
			return err
		}},
		{"logout", func(c *client.Client) error { return c.Logout(t.Context()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case n < 2:
					hangUp(w)
				case r.URL.Path == "/api/v1/logout":
					w.WriteHeader(http.StatusNoContent)
				case r.Method == http.MethodPost:
					writeJSON(w, http.StatusAccepted, attemptBody(r))
				default:
					writeJSON(w, http.StatusOK, quizBody)
				}
			})
			if err := tc.call(newClient(t, srv.URL, client.Options{Token: "tok"})); err != nil {
				t.Fatalf("after two closed connections: %v", err)
			}
			if n := len(f.all()); n != 3 {
				t.Errorf("%d requests, want 3", n)
			}
		})
	}
}

func TestRetriesConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there until the client has been refused

	refused := make(chan struct{})
	var once sync.Once
	c := newClient(t, "http://"+addr, client.Options{OnRetry: func(_, _ string, err error, _ time.Duration) {
		if errors.Is(err, syscall.ECONNREFUSED) {
			once.Do(func() { close(refused) })
		}
	}})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"courses": []map[string]any{{"id": "c1", "slug": "s", "title": "T", "quiz_ids": []string{"q1"}}}})
	})}
	served := make(chan error, 1)
	go func() {
		<-refused
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			served <- err
			return
		}
		served <- srv.Serve(ln)
	}()
	t.Cleanup(func() {
		once.Do(func() { close(refused) })
		srv.Close()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	courses, _, err := c.Courses(t.Context())
	if err != nil || len(courses) != 1 || courses[0].QuizIDs[0] != "q1" {
		t.Fatalf("courses after a refused connection: %+v, %v", courses, err)
	}
	select {
	case <-refused:
	default:
		t.Fatal("the client was never refused")
	}
}

func TestNoRetry(t *testing.T) {
	t.Parallel()
	answers := []client.Answer{{QuestionID: "a", ChoiceID: "b"}}
	for _, tc := range []struct {
		name    string
		respond func(w http.ResponseWriter)
		call    func(*client.Client) error
		status  int // 0: a transport error
		code    string
	}{
		{"signup on 503", unavailable, func(c *client.Client) error {
			_, _, err := c.Signup(t.Context(), "a@example.com", "A", "password")
			return err
		}, 503, client.CodeUnavailable},
		{"login on 503", unavailable, func(c *client.Client) error {
			_, err := c.Login(t.Context(), "a@example.com", "password")
			return err
		}, 503, client.CodeUnavailable},
		{"signup on a closed connection", hangUp, func(c *client.Client) error {
			_, _, err := c.Signup(t.Context(), "a@example.com", "A", "password")
			return err
		}, 0, ""},
		{"login on a closed connection", hangUp, func(c *client.Client) error {
			_, err := c.Login(t.Context(), "a@example.com", "password")
			return err
		}, 0, ""},
		{"get on 400", respondError(400, client.CodeInvalidRequest), func(c *client.Client) error {
			_, err := c.Attempts(t.Context(), client.AttemptsQuery{Limit: -1})
			return err
		}, 400, client.CodeInvalidRequest},
		{"get on 404", respondError(404, client.CodeNotFound), func(c *client.Client) error {
			_, err := c.Attempt(t.Context(), "nope")
			return err
		}, 404, client.CodeNotFound},
		{"get on 500", respondError(500, client.CodeInternal), func(c *client.Client) error {
			_, err := c.Progress(t.Context())
			return err
		}, 500, client.CodeInternal},
		{"submit on 400", respondError(400, client.CodeInvalidRequest), func(c *client.Client) error {
			_, err := c.SubmitAttempt(t.Context(), "q1", answers)
			return err
		}, 400, client.CodeInvalidRequest},
		{"submit on 422", respondError(422, client.CodeIdempotencyKeyReused), func(c *client.Client) error {
			_, err := c.SubmitAttempt(t.Context(), "q1", answers, client.WithIdempotencyKey("k"))
			return err
		}, 422, client.CodeIdempotencyKeyReused},
		{"logout on 401", respondError(401, client.CodeUnauthorized), func(c *client.Client) error {
			return c.Logout(t.Context())
		}, 401, client.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) { tc.respond(w) })
			err := tc.call(newClient(t, srv.URL, client.Options{Token: "tok"}))
			if err == nil {
				t.Fatal("no error")
			}
			if got := client.StatusOf(err); got != tc.status || (tc.code != "" && !client.IsCode(err, tc.code)) {
				t.Errorf("error %v: status %d, want %d %s", err, got, tc.status, tc.code)
			}
			if n := len(f.all()); n != 1 {
				t.Errorf("%d requests, want exactly 1", n)
			}
		})
	}
}

func unavailable(w http.ResponseWriter) { writeError(w, 503, client.CodeUnavailable, "0") }

func respondError(status int, code string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { writeError(w, status, code, "") }
}

func TestDeadlineStopsRetries(t *testing.T) {
	t.Parallel()
	t.Run("retrying", func(t *testing.T) {
		t.Parallel()
		srv, f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusServiceUnavailable, client.CodeUnavailable, "")
		})
		c := newClient(t, srv.URL, client.Options{Deadline: 500 * time.Millisecond})
		start := time.Now()
		_, _, err := c.Quiz(t.Context(), "q1")
		elapsed := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || !client.IsCode(err, client.CodeUnavailable) {
			t.Errorf("error %v: want the last 503 and the deadline", err)
		}
		if n := len(f.all()); n < 2 {
			t.Errorf("%d requests: it did not retry before the deadline", n)
		}
		// Loose: without the deadline it would retry until the test timed out.
		if elapsed > 10*time.Second {
			t.Errorf("returned after %s with a deadline of 500ms", elapsed)
		}
	})
	t.Run("a Retry-After past the deadline", func(t *testing.T) {
		t.Parallel()
		srv, f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusServiceUnavailable, client.CodeUnavailable, "60")
		})
		c := newClient(t, srv.URL, client.Options{Deadline: 2 * time.Second})
		_, _, err := c.Quiz(t.Context(), "q1")
		var e *client.Error
		if !errors.As(err, &e) || e.RetryAfter() != time.Minute {
			t.Fatalf("error %v: want the 503 with its Retry-After", err)
		}
		// Given up at once, not by waiting for the deadline.
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waited for the deadline: %v", err)
		}
		if n := len(f.all()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

func TestDo(t *testing.T) {
	t.Parallel()
	srv, f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Seen", "yes")
		writeError(w, http.StatusServiceUnavailable, client.CodeUnavailable, "1")
	})
	c := newClient(t, srv.URL, client.Options{Token: "tok"})
	status, h, body, err := c.Do(t.Context(), http.MethodPost, "/api/v1/quizzes/q1/attempts?x=1", http.Header{"Idempotency-Key": {"k"}}, strings.NewReader(`{"answers":`))
	if err != nil || status != 503 || h.Get("X-Seen") != "yes" || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("Do: %d %v %q %v", status, h, body, err)
	}
	_, _, _, err = c.Do(t.Context(), http.MethodPost, "/api/v1/signup", http.Header{"Content-Type": {"text/plain"}, "Authorization": {"Bearer other"}}, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	hits := f.all()
	if len(hits) != 2 {
		t.Fatalf("%d requests, want 2: Do never retries", len(hits))
	}
	if h := hits[0]; h.body != `{"answers":` || h.query != "x=1" || h.header.Get("Content-Type") != "application/json" ||
		h.header.Get("Authorization") != "Bearer tok" || h.header.Get("Idempotency-Key") != "k" {
		t.Errorf("first request: %+v", h)
	}
	if h := hits[1]; h.header.Get("Content-Type") != "text/plain" || h.header.Get("Authorization") != "Bearer other" {
		t.Errorf("the caller's headers were overridden: %v", h.header)
	}
}
