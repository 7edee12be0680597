package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/worker"
)

// TestMain lets the test binary stand in for the quizstream binary: with
// QUIZSTREAM_TEST_MAIN=1 it runs main() with its arguments, so tests can
// start real api and worker processes and kill them.
func TestMain(m *testing.M) {
	if os.Getenv("QUIZSTREAM_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// stack is a private quizstream installation for one test: its own
// PostgreSQL database (migrated, demo content seeded) and its own JetStream
// server, both real.
type stack struct {
	DBURL   string
	Store   *store.Store
	NATS    *server.Server
	NATSURL string
	NC      *nats.Conn
	JS      jetstream.JetStream
	Stream  events.StreamConfig
	Log     *events.Log
	Quizzes []store.Quiz // the demo quizzes, with their answer keys
}

func newStack(t testing.TB, stream events.StreamConfig) *stack {
	t.Helper()
	st, dbURL := storetest.Open(t)
	ns := eventstest.NewServer(t)
	nc, js := eventstest.Connect(t, ns)
	if err := stream.Validate(); err != nil {
		t.Fatal(err)
	}
	lg, err := events.NewLog(t.Context(), js, stream)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{DBURL: dbURL, Store: st, NATS: ns, NATSURL: ns.ClientURL(), NC: nc, JS: js, Stream: stream, Log: lg}
	for _, c := range store.DemoContent(store.DefaultDemo) {
		s.Quizzes = append(s.Quizzes, c.Quizzes...)
	}
	return s
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// apiInstance is an API server running in this process.
type apiInstance struct {
	URL  string
	stop func()
}

// startAPI serves an API instance on a free port; it stops when t ends or
// when stop is called.
func (s *stack) startAPI(t testing.TB, cfg api.Config) *apiInstance {
	t.Helper()
	cfg.Store, cfg.Events = s.Store, s.Log
	if cfg.Notices == nil {
		cfg.Notices = events.NewNotices(s.NC)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.ContentReload == 0 {
		cfg.ContentReload = -1
	}
	srv, err := api.NewServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("api: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &apiInstance{URL: "http://" + ln.Addr().String(), stop: stop}
}

// goWorker runs a worker in this process on the shared consumer (with the
// dead-letter stream) and returns its cancel and its result separately, so
// that a test can act between the two; it is cancelled and waited for when
// t ends if still running.
func (s *stack) goWorker(t testing.TB, cfg worker.Config) (context.CancelFunc, <-chan error) {
	t.Helper()
	cons, err := s.Log.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = s.Stream.AckWait
	}
	dl, err := events.EnsureDeadLetters(t.Context(), s.JS, s.Stream)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(cons, s.Store, dl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return cancel, done
}

// startWorker runs a worker in this process; the returned stop cancels it
// and waits for it to return.
func (s *stack) startWorker(t testing.TB, cfg worker.Config) (stop func()) {
	t.Helper()
	cancel, done := s.goWorker(t, cfg)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// spawn starts `quizstream <command>` as a separate process (this test
// binary standing in for it) against the stack, with extra environment
// variables; it is killed when t ends if still running.
func (s *stack) spawn(t testing.TB, command string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], command)
	cmd.Env = append(os.Environ(),
		"QUIZSTREAM_TEST_MAIN=1",
		"DATABASE_URL="+s.DBURL,
		"NATS_URL="+s.NATSURL,
		"METRICS_ADDR=off",
		"LOG_LEVEL=warn",
		fmt.Sprintf("ACK_WAIT=%s", s.Stream.AckWait),
		fmt.Sprintf("STREAM_DUPLICATES=%s", s.Stream.Duplicates),
		fmt.Sprintf("MAX_ACK_PENDING=%d", s.Stream.MaxAckPending),
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout = tWriter{t}
	cmd.Stderr = tWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// countAttempts returns the number of stored attempt rows.
func (s *stack) countAttempts(t testing.TB) int {
	t.Helper()
	var n int
	if err := s.Store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM attempts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes, then fails t.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDrained waits until the consumer has acknowledged every message in
// the stream, i.e. every accepted attempt was stored.
func (s *stack) waitDrained(t testing.TB, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "the workers to drain the stream", func() bool {
		stream, err := s.JS.Stream(t.Context(), s.Stream.Name)
		if err != nil {
			return false
		}
		info, err := stream.Info(t.Context())
		if err != nil {
			return false
		}
		floor, err := s.Log.AckFloor(t.Context())
		return err == nil && floor >= info.State.LastSeq
	})
}

// client is a signed-up student talking HTTP to an API instance.
type client struct {
	base  string
	token string
	http  *http.Client
}

type attemptBody struct {
	AttemptID   string    `json:"attempt_id"`
	QuizID      string    `json:"quiz_id"`
	StudentID   string    `json:"student_id"`
	Score       int       `json:"score"`
	MaxScore    int       `json:"max_score"`
	Status      string    `json:"status"`
	SubmittedAt time.Time `json:"submitted_at"`
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}

// signup creates a student with a unique email and returns its client.
func signup(t testing.TB, base, email string) *client {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	status := doJSON(t, &client{base: base, http: httpClient}, "POST", "/api/v1/signup", nil,
		map[string]string{"email": email, "name": "Student " + email, "password": "correct horse"}, &out)
	if status != http.StatusCreated {
		t.Fatalf("signup %s: status %d", email, status)
	}
	return &client{base: base, token: out.Token, http: httpClient}
}

// doJSON sends a JSON request and decodes the JSON response into out (when
// not nil); it returns the status, or fails t on a transport error.
func doJSON(t testing.TB, c *client, method, path string, header map[string]string, body, out any) int {
	t.Helper()
	status, raw, err := c.do(method, path, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return status
}

// do sends a request and returns the status and body; a transport error is
// returned, not fatal, for callers running in goroutines.
func (c *client) do(method, path string, header map[string]string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// submit posts an attempt; key may be empty. It returns the status and the
// decoded body (zero unless 202).
func (c *client) submit(quizID, key string, answers []events.Answer) (int, attemptBody, error) {
	h := map[string]string{}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	status, raw, err := c.do("POST", "/api/v1/quizzes/"+quizID+"/attempts", h, map[string]any{"answers": answers})
	var out attemptBody
	if err == nil && status == http.StatusAccepted {
		err = json.Unmarshal(raw, &out)
	}
	return status, out, err
}

// answersFor answers every question of q: correctly for the first `right`
// questions, wrongly for the rest. It returns the answers and their score.
func answersFor(q store.Quiz, right int) []events.Answer {
	out := make([]events.Answer, 0, len(q.Questions))
	for i, qu := range q.Questions {
		for _, ch := range qu.Choices {
			if ch.Correct == (i < right) {
				out = append(out, events.Answer{QuestionID: qu.ID.String(), ChoiceID: ch.ID.String()})
				break
			}
		}
	}
	return out
}
