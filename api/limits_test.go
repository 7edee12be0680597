package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// retryAfter returns r's Retry-After in whole seconds, failing t unless
// it is one of at least 1.
func retryAfter(t testing.TB, what string, r apptest.Response) int {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Errorf("%s: Retry-After %q, want whole seconds", what, r.Header.Get("Retry-After"))
	}
	return n
}

// Attempt POSTs are limited per student: past the burst, 429 with the
// wait in Retry-After, before the body is even read (429 comes before 413
// and 400), nothing published; another student is not held up.
func TestAttemptRateLimitPerStudent(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{AttemptRate: 0.01, AttemptBurst: 3})
	a := apptest.Signup(t, in.URL, "rate-a@example.com")
	b := apptest.Signup(t, in.URL, "rate-b@example.com")
	q := s.Quizzes[0]
	path := "/api/v1/quizzes/" + q.ID.String() + "/attempts"
	for i := range 3 {
		if _, err := apptest.Submit(t.Context(), a, q.ID.String(), fmt.Sprint("a-", i), apptest.AnswersFor(q, 1)); err != nil {
			t.Fatalf("attempt %d within the burst: %v", i, err)
		}
	}
	published := eventstest.StreamMessages(t, s.JS, s.Stream.Name)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"valid", apptest.MustJSON(t, map[string]any{"answers": apptest.AnswersFor(q, 1)})},
		{"malformed", []byte(`{"answers": [`)},
		{"oversized", append([]byte(`{"answers": [], "x": "`), bytes.Repeat([]byte("x"), 70<<10)...)},
	} {
		r := apptest.Do(t, a, http.MethodPost, path, http.Header{"Idempotency-Key": {"over"}}, bytes.NewReader(tc.body))
		apptest.CheckError(t, "over the burst, "+tc.name, r, http.StatusTooManyRequests, "rate_limited")
		if n := retryAfter(t, "over the burst", r); n < 60 {
			t.Errorf("Retry-After %ds at 0.01/s; want the bucket's wait (100s)", n)
		}
	}
	if n := eventstest.StreamMessages(t, s.JS, s.Stream.Name); n != published {
		t.Errorf("429s published %d attempts", n-published)
	}
	if _, err := apptest.Submit(t.Context(), b, q.ID.String(), "b-0", apptest.AnswersFor(q, 1)); err != nil {
		t.Errorf("another student: %v", err)
	}
	if n := counter(t, in, "quizstream_api_refused_total", "limit", "attempt_rate"); n != 3 {
		t.Errorf("refused{limit=attempt_rate} = %v, want 3", n)
	}
}

// Signups have a bucket per client address, the real address:
// X-Forwarded-For counts only from a configured proxy, and then only what
// the proxy appended (a client cannot pick its own bucket by prepending).
// Logins do not share it: an address out of signups still logs in.
func TestSignupRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	n := 0
	signup := func(in *apptest.Instance, xff string) apptest.Response {
		t.Helper()
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		n++
		return apptest.PostJSON(t, apptest.Client(in.URL), "/api/v1/signup", h,
			map[string]string{"email": fmt.Sprintf("signup-%d@example.com", n), "name": "N", "password": "correct horse"})
	}
	// No trusted proxy: the header is ignored, every request is the peer's.
	direct := s.StartAPI(t, api.Config{SignupRate: 0.01, SignupBurst: 3})
	for i := range 3 {
		if r := signup(direct, fmt.Sprintf("203.0.113.%d", i)); r.Status != http.StatusCreated {
			t.Fatalf("signup %d within the burst: %d %s", i, r.Status, r.Body)
		}
	}
	r := signup(direct, "203.0.113.99")
	apptest.CheckError(t, "a fourth signup with another X-Forwarded-For, no proxy trusted", r, http.StatusTooManyRequests, "rate_limited")
	if n := retryAfter(t, "signup over the burst", r); n < 60 {
		t.Errorf("Retry-After %ds at 0.01/s; want the bucket's wait (100s)", n)
	}
	if got := storetest.Int(t, s.DB, `SELECT count(*) FROM students`); got != 3 {
		t.Errorf("%d students stored, want the 3 within the burst", got)
	}
	r = apptest.PostJSON(t, apptest.Client(direct.URL), "/api/v1/login", nil, map[string]string{"email": "signup-1@example.com", "password": "correct horse"})
	if r.Status != http.StatusOK {
		t.Errorf("a login from the address out of signups: %d %s, want 200", r.Status, r.Body)
	}
	if n := counter(t, direct, "quizstream_api_refused_total", "limit", "signup_rate"); n != 1 {
		t.Errorf("refused{limit=signup_rate} = %v, want 1", n)
	}

	// Loopback as the trusted proxy: the client is the nearest untrusted
	// address.
	proxied := s.StartAPI(t, api.Config{SignupRate: 0.01, SignupBurst: 3, TrustedProxies: []string{"127.0.0.1"}})
	for i := range 3 {
		if r := signup(proxied, "203.0.113.1"); r.Status != http.StatusCreated {
			t.Fatalf("signup %d within the burst: %d %s", i, r.Status, r.Body)
		}
	}
	apptest.CheckError(t, "203.0.113.1 over its burst", signup(proxied, "203.0.113.1"), http.StatusTooManyRequests, "rate_limited")
	apptest.CheckError(t, "203.0.113.1 prepending another address", signup(proxied, "198.51.100.7, 203.0.113.1"), http.StatusTooManyRequests, "rate_limited")
	if r := signup(proxied, "203.0.113.2"); r.Status != http.StatusCreated {
		t.Errorf("another client behind the proxy: %d %s, want its own bucket", r.Status, r.Body)
	}
}

// A student may have at most MaxUnsettledPerStudent attempts in the event
// log that no worker has stored: past it, 503 with Retry-After and nothing
// published, after every check of the input (bad input is still told what
// is wrong); once the workers catch up the student goes on.
func TestUnsettledAttemptsPerStudent(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{MaxUnsettledPerStudent: 3})
	a := apptest.Signup(t, in.URL, "unsettled-a@example.com")
	b := apptest.Signup(t, in.URL, "unsettled-b@example.com")
	q := s.Quizzes[0]
	path := "/api/v1/quizzes/" + q.ID.String() + "/attempts"
	for i := range 3 {
		if _, err := apptest.Submit(t.Context(), a, q.ID.String(), fmt.Sprint("u-", i), apptest.AnswersFor(q, 1)); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	published := eventstest.StreamMessages(t, s.JS, s.Stream.Name)
	r := apptest.PostJSON(t, a, path, http.Header{"Idempotency-Key": {"u-3"}}, map[string]any{"answers": apptest.AnswersFor(q, 1)})
	apptest.CheckError(t, "a fourth unsettled attempt", r, http.StatusServiceUnavailable, "unavailable")
	retryAfter(t, "a fourth unsettled attempt", r)
	r = apptest.PostJSON(t, a, path, nil, map[string]any{"answers": []map[string]string{{"question_id": "nope", "choice_id": "nope"}}})
	apptest.CheckError(t, "bad input over the cap", r, http.StatusBadRequest, "invalid_request")
	if n := eventstest.StreamMessages(t, s.JS, s.Stream.Name); n != published {
		t.Errorf("refused attempts published %d", n-published)
	}
	if _, err := apptest.Submit(t.Context(), b, q.ID.String(), "b-0", apptest.AnswersFor(q, 1)); err != nil {
		t.Errorf("another student: %v", err)
	}
	s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 30*time.Second)
	apptest.WaitFor(t, 10*time.Second, "the capped student to be let through", func() bool {
		r := apptest.PostJSON(t, a, path, http.Header{"Idempotency-Key": {"u-3"}}, map[string]any{"answers": apptest.AnswersFor(q, 1)})
		return r.Status == http.StatusAccepted
	})
}

// rawRequest writes raw on a new connection to the instance and returns
// the apptest.Response read back.
func rawRequest(t testing.TB, in *apptest.Instance, raw string) apptest.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, conn)
}

func readResponse(t testing.TB, conn net.Conn) apptest.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// What net/http answers by itself before any handler runs (a malformed
// request line, no Host, headers over the limit) is in the HTTP
// contract's error shape too.
func TestFrameworkErrorsInTheErrorShape(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{MaxHeaderBytes: 1 << 10})
	for _, tc := range []struct {
		name, raw string
		status    int
		code      string
	}{
		{"malformed request line", "GARBAGE\r\n\r\n", http.StatusBadRequest, "invalid_request"},
		{"no Host", "GET /livez HTTP/1.1\r\n\r\n", http.StatusBadRequest, "invalid_request"},
		{"bad header line", "GET /livez HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", http.StatusBadRequest, "invalid_request"},
		{"headers over the limit", "GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 16<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge, "headers_too_large"},
	} {
		r := rawRequest(t, in, tc.raw)
		apptest.CheckError(t, tc.name, r, tc.status, tc.code)
	}
	// A request within the limit is served on the same listener.
	if r := rawRequest(t, in, "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.Status != http.StatusOK {
		t.Errorf("a well-formed request: %d %s", r.Status, r.Body)
	}
}

// Past MaxConnections a new connection is answered 503 with Retry-After in
// the error shape and closed; when a connection closes, its slot is free.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{MaxConnections: 2})
	addr := strings.TrimPrefix(in.URL, "http://")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A request answered shows the connection was accepted.
		io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("a connection within the cap: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		held = append(held, c)
	}
	r := rawRequest(t, in, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
	apptest.CheckError(t, "a third connection", r, http.StatusServiceUnavailable, "unavailable")
	retryAfter(t, "a third connection", r)
	if n := counter(t, in, "quizstream_api_refused_total", "limit", "connections"); n < 1 {
		t.Errorf("refused{limit=connections} = %v", n)
	}
	held[0].Close()
	apptest.WaitFor(t, 10*time.Second, "the slot of the closed connection", func() bool {
		return rawRequest(t, in, "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").Status == http.StatusOK
	})
}

// The server's timeouts answer in the error shape where a client can still
// hear it: a body that does not arrive within ReadTimeout is a 408; a
// request held up past the handlers' deadline (a little under
// WriteTimeout) is a 503 with Retry-After, not a connection cut; an idle
// keep-alive connection is closed after IdleTimeout.
func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{ReadTimeout: 500 * time.Millisecond, WriteTimeout: 2 * time.Second, PublishTimeout: time.Second})
	apptest.Signup(t, in.URL, "slow@example.com")

	t.Run("slow body", func(t *testing.T) {
		r := rawRequest(t, in, "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":")
		apptest.CheckError(t, "a body short of its length", r, http.StatusRequestTimeout, "request_timeout")
	})

	t.Run("held past the deadline", func(t *testing.T) {
		// A lock that login's query waits behind, for longer than WriteTimeout.
		tx, err := s.DB.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		if _, err := tx.Exec(t.Context(), `LOCK TABLE students IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := apptest.PostJSON(t, apptest.Client(in.URL), "/api/v1/login", nil, map[string]string{"email": "slow@example.com", "password": "correct horse"})
		apptest.CheckError(t, "a login held past the deadline", r, http.StatusServiceUnavailable, "unavailable")
		retryAfter(t, "a login held past the deadline", r)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("the 503 took %s with WriteTimeout 2s", took)
		}
	})

	t.Run("idle", func(t *testing.T) {
		// ReadTimeout longer than the wait, so that only IdleTimeout can
		// close the connection in time.
		in := s.StartAPI(t, api.Config{ReadTimeout: 20 * time.Second, IdleTimeout: 300 * time.Millisecond})
		conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("first request: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("an idle connection: read %v, want the server to close it", err)
		}
	})
}

// Password hashing is bounded: with one slot and a short wait, a burst of
// logins gets some 503s with Retry-After (the rest their 401) instead of a
// queue without end.
func TestPasswordHashingIsBounded(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{HashConcurrency: 1, HashWait: time.Millisecond, LoginFailureRate: -1, PairFailureRate: -1, AccountFailureRate: -1})
	apptest.Signup(t, in.URL, "hash@example.com")
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			r := apptest.PostJSON(t, apptest.Client(in.URL), "/api/v1/login", nil, map[string]string{"email": "hash@example.com", "password": "wrong password"})
			if r.Status == http.StatusServiceUnavailable {
				apptest.CheckError(t, "a login with no hashing slot", r, http.StatusServiceUnavailable, "unavailable")
				retryAfter(t, "a login with no hashing slot", r)
			}
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[http.StatusServiceUnavailable] == 0 || statuses[http.StatusUnauthorized] == 0 || len(statuses) != 2 {
		t.Errorf("16 logins at once with one slot and a 1ms wait: %v; want 401s and 503s only", statuses)
	}
	if n := counter(t, in, "quizstream_api_password_hashes_total", "result", "refused"); n != float64(statuses[http.StatusServiceUnavailable]) {
		t.Errorf("hashes refused %v, 503s %d", n, statuses[http.StatusServiceUnavailable])
	}
}
