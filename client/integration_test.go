package client_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/worker"
)

// stack is a real quizstream for one test, in this process: its own
// PostgreSQL database (demo content seeded) and its own JetStream server.
type stack struct {
	dbURL   string
	store   *store.Store
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  events.StreamConfig
	log     *events.Log
	quizzes map[string]store.Quiz // the demo quizzes with their answer keys, by id
	order   []store.Quiz
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st, dbURL := storetest.Open(t)
	ns := eventstest.NewServer(t)
	nc, js := eventstest.Connect(t, ns)
	s := &stack{dbURL: dbURL, store: st, nc: nc, js: js, quizzes: map[string]store.Quiz{}}
	if err := s.stream.Validate(); err != nil {
		t.Fatal(err)
	}
	lg, err := events.NewLog(t.Context(), js, s.stream)
	if err != nil {
		t.Fatal(err)
	}
	s.log = lg
	for _, c := range store.DemoContent(store.DefaultDemo) {
		for _, q := range c.Quizzes {
			s.quizzes[q.ID.String()] = q
			s.order = append(s.order, q)
		}
	}
	return s
}

// apiRun is an API instance serving in this process.
type apiRun struct {
	addr string
	// crash makes the instance lose every answer it has not sent yet, as a
	// crash would (their requests' attempts were published, unknown to their
	// clients), waits until at least one is lost, and stops the instance.
	crash func()
}

// serveAPI serves a new API instance on addr ("127.0.0.1:0" for any free
// port) until t ends or it crashes. reg, when not nil, gets its metrics.
func (s *stack) serveAPI(t *testing.T, addr string, reg prometheus.Registerer) *apiRun {
	t.Helper()
	srv, err := api.NewServer(t.Context(), api.Config{
		Store: s.store, Events: s.log, Notices: events.NewNotices(s.nc),
		Logger: testLogger(t), ContentReload: -1, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	var inner net.Listener
	waitFor(t, 10*time.Second, "listening on "+addr, func() bool {
		inner, err = net.Listen("tcp", addr)
		return err == nil
	})
	ln := &cuttingListener{Listener: inner, lost: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("api: %v", err)
		}
	})
	t.Cleanup(stop)
	crash := func() {
		ln.cut.Store(true)
		select {
		case <-ln.lost:
		case <-time.After(30 * time.Second):
			t.Fatal("no answer was lost in 30s: were there requests in flight?")
		}
		stop()
	}
	return &apiRun{addr: inner.Addr().String(), crash: crash}
}

// cuttingListener's connections, once cut is set, close instead of
// writing: the answers in flight are lost after their handlers ran.
type cuttingListener struct {
	net.Listener
	cut  atomic.Bool
	lost chan struct{} // closed at the first answer lost
	once sync.Once
}

func (l *cuttingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cuttingConn{Conn: c, l: l}, nil
}

type cuttingConn struct {
	net.Conn
	l *cuttingListener
}

func (c *cuttingConn) Write(p []byte) (int, error) {
	if c.l.cut.Load() {
		c.Conn.Close()
		c.l.once.Do(func() { close(c.l.lost) })
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

// counter returns the value of a counter with one label from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// startWorker runs a worker on the shared consumer until t ends.
func (s *stack) startWorker(t *testing.T) {
	t.Helper()
	cons, err := s.log.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dl, err := events.EnsureDeadLetters(t.Context(), s.js, s.stream)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(cons, s.store, dl, worker.Config{AckWait: s.stream.AckWait, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
}

// waitDrained waits until the worker has settled every event in the stream.
func (s *stack) waitDrained(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "the worker to drain the stream", func() bool {
		stream, err := s.js.Stream(t.Context(), s.stream.Name)
		if err != nil {
			return false
		}
		info, err := stream.Info(t.Context())
		if err != nil {
			return false
		}
		floor, err := s.log.AckFloor(t.Context())
		return err == nil && floor >= info.State.LastSeq
	})
}

// answers answers every question of q, the first `right` correctly.
func answers(q store.Quiz, right int) []client.Answer {
	out := make([]client.Answer, 0, len(q.Questions))
	for i, qu := range q.Questions {
		for _, ch := range qu.Choices {
			if ch.Correct == (i < right) {
				out = append(out, client.Answer{QuestionID: qu.ID.String(), ChoiceID: ch.ID.String()})
				break
			}
		}
	}
	return out
}

// waitFor polls cond until it holds, or fails t after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestAgainstAPI runs every typed call against the real API.
func TestAgainstAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.serveAPI(t, "127.0.0.1:0", nil)
	s.startWorker(t)
	ctx := t.Context()
	anon := client.New("http://"+a.addr, client.Options{})
	t.Cleanup(anon.CloseIdleConnections)

	// Accounts.
	const email, password = "ada@example.com", "correct horse"
	ada, token, err := anon.Signup(ctx, email, "Ada", password)
	if err != nil || ada.Email != email || ada.Name != "Ada" || token == "" || ada.CreatedAt.IsZero() {
		t.Fatalf("signup: %+v %v", ada, err)
	}
	if _, _, err := anon.Signup(ctx, email, "Ada again", password); !client.IsCode(err, client.CodeConflict) {
		t.Errorf("signup with a taken email: %v", err)
	}
	if _, _, err := anon.Signup(ctx, "no-at-sign", "X", password); !client.IsCode(err, client.CodeInvalidRequest) {
		t.Errorf("signup with a bad email: %v", err)
	}
	if _, err := anon.Login(ctx, email, "wrong password"); !client.IsCode(err, client.CodeUnauthorized) || client.StatusOf(err) != 401 {
		t.Errorf("login with a wrong password: %v", err)
	}
	second, err := anon.Login(ctx, email, password)
	if err != nil || second == "" || second == token {
		t.Fatalf("login: %q %v", second, err)
	}
	asAda := anon.WithToken(token)
	if me, err := asAda.User(ctx); err != nil || me.ID != ada.ID || me.Email != email || !me.CreatedAt.Equal(ada.CreatedAt) {
		t.Errorf("user: %+v %v", me, err)
	}
	if _, err := anon.User(ctx); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("user without a token: %v", err)
	}

	// Content, with ETags.
	courses, info, err := anon.Courses(ctx)
	if err != nil || len(courses) != store.DefaultDemo.Courses || info.ETag == "" || info.MaxAge <= 0 {
		t.Fatalf("courses: %d, %+v, %v", len(courses), info, err)
	}
	if none, again, err := anon.Courses(ctx, client.IfNoneMatch(info.ETag)); err != nil || !again.NotModified || none != nil {
		t.Errorf("courses if none match: %+v %v", again, err)
	}
	course, _, err := anon.Course(ctx, courses[0].ID)
	if err != nil || len(course.Quizzes) != store.DefaultDemo.Quizzes || !slices.Equal(course.QuizIDs, courses[0].QuizIDs) {
		t.Fatalf("course: %+v %v", course, err)
	}
	quiz, qinfo, err := anon.Quiz(ctx, course.Quizzes[0].ID)
	want := s.quizzes[quiz.ID]
	if err != nil || quiz.CourseID != course.ID || len(quiz.Questions) != len(want.Questions) || quiz.Questions[0].ID != want.Questions[0].ID.String() {
		t.Fatalf("quiz: %+v %v", quiz, err)
	}
	if _, again, err := anon.Quiz(ctx, quiz.ID, client.IfNoneMatch(qinfo.ETag)); err != nil || !again.NotModified {
		t.Errorf("quiz if none match: %+v %v", again, err)
	}
	if _, _, err := anon.Quiz(ctx, uuid.NewString()); !client.IsCode(err, client.CodeNotFound) {
		t.Errorf("unknown quiz: %v", err)
	}

	// Attempts.
	sub, err := asAda.SubmitAttempt(ctx, quiz.ID, answers(want, 7))
	if err != nil || sub.Score != 7 || sub.MaxScore != len(want.Questions) || sub.StudentID != ada.ID || sub.QuizID != quiz.ID || sub.Tries != 1 {
		t.Fatalf("submit: %+v %v", sub, err)
	}
	reversed := slices.Clone(answers(want, 7))
	slices.Reverse(reversed)
	again, err := asAda.SubmitAttempt(ctx, quiz.ID, reversed, client.WithIdempotencyKey(sub.IdempotencyKey))
	if err != nil || again.AttemptID != sub.AttemptID || !again.SubmittedAt.Equal(sub.SubmittedAt) || again.Score != 7 {
		t.Errorf("resubmission: %+v %v, first %+v", again, err, sub)
	}
	if _, err := asAda.SubmitAttempt(ctx, quiz.ID, answers(want, 2), client.WithIdempotencyKey(sub.IdempotencyKey)); !client.IsCode(err, client.CodeIdempotencyKeyReused) {
		t.Errorf("the key with other answers: %v", err)
	}
	if _, err := asAda.SubmitAttempt(ctx, quiz.ID, []client.Answer{{QuestionID: "nope", ChoiceID: "nope"}}); !client.IsCode(err, client.CodeInvalidRequest) {
		t.Errorf("an unknown question: %v", err)
	}
	if _, err := anon.SubmitAttempt(ctx, quiz.ID, nil); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("submit without a token: %v", err)
	}
	if got, err := asAda.Attempt(ctx, sub.AttemptID); err != nil || got.AttemptID != sub.AttemptID || got.Score != 7 {
		t.Errorf("attempt: %+v %v", got, err)
	}
	_, bobToken, err := anon.Signup(ctx, "bob@example.com", "Bob", password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WithToken(bobToken).Attempt(ctx, sub.AttemptID); !client.IsCode(err, client.CodeNotFound) {
		t.Errorf("another student's attempt: %v", err)
	}
	other := s.quizzes[course.Quizzes[1].ID]
	for i := range 9 { // 10 attempts in all, on two quizzes, with nil (no answers) among them
		q, a := other, answers(other, i)
		if i == 0 {
			a = nil
		}
		if _, err := asAda.SubmitAttempt(ctx, q.ID.String(), a); err != nil {
			t.Fatal(err)
		}
	}
	all, err := asAda.AllAttempts(ctx, client.AttemptsQuery{Limit: 3})
	if err != nil || len(all) != 10 {
		t.Fatalf("all attempts, 3 a page: %d %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].SubmittedAt.After(all[i-1].SubmittedAt) || all[i].AttemptID == all[i-1].AttemptID {
			t.Errorf("attempts %d and %d out of order: %+v %+v", i-1, i, all[i-1], all[i])
		}
	}
	page, err := asAda.Attempts(ctx, client.AttemptsQuery{QuizID: quiz.ID})
	if err != nil || len(page.Attempts) != 1 || page.NextCursor != "" || page.Attempts[0].AttemptID != sub.AttemptID {
		t.Errorf("attempts of one quiz: %+v %v", page, err)
	}
	if _, err := asAda.Attempts(ctx, client.AttemptsQuery{Limit: -1}); !client.IsCode(err, client.CodeInvalidRequest) {
		t.Errorf("a negative limit: %v", err)
	}

	// Progress, once the worker stored them all.
	var progress client.Progress
	waitFor(t, 30*time.Second, "progress to count 10 attempts", func() bool {
		progress, err = asAda.Progress(ctx)
		return err == nil && progress.Courses[0].Attempts == 10
	})
	if p := progress.Courses[0]; len(progress.Courses) != store.DefaultDemo.Courses || p.CourseID != course.ID ||
		p.QuizzesAttempted != 2 || p.QuizzesTotal != store.DefaultDemo.Quizzes || p.BestScores[quiz.ID] != 7 || p.BestScores[other.ID.String()] != 8 {
		t.Errorf("progress: %+v", progress.Courses[0])
	}
	if got, err := asAda.Attempt(ctx, sub.AttemptID); err != nil || got.Status != client.StatusRecorded {
		t.Errorf("a stored attempt: %+v %v", got, err)
	}

	// The low-level call, then logout.
	status, _, body, err := asAda.Do(ctx, http.MethodPost, "/api/v1/quizzes/"+quiz.ID+"/attempts", nil, strings.NewReader(`{"answers": [`))
	if err != nil || status != http.StatusBadRequest || !strings.Contains(string(body), client.CodeInvalidRequest) {
		t.Errorf("a malformed body: %d %s %v", status, body, err)
	}
	if err := asAda.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if _, err := asAda.User(ctx); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("user after logout: %v", err)
	}
	if err := asAda.Logout(ctx); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("a second logout: %v", err)
	}
	if me, err := anon.WithToken(second).User(ctx); err != nil || me.ID != ada.ID {
		t.Errorf("the other token after logout: %+v %v", me, err)
	}
}
