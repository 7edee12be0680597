package faults_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// TestSubmissionsSurviveAPIRestart takes the only API instance down for
// three seconds in the middle of concurrent submissions, losing the answers
// in flight (their attempts published, unknown to their clients), and
// serves a new instance on the same address: every
// submission must still end in a 202 (the client retried through the outage
// with the same key) and be stored exactly once, as its 202 said. It is
// package client's retry (client.SubmitAttempt) under a fault, so it lives
// with the other quick fault tests.
func TestSubmissionsSurviveAPIRestart(t *testing.T) {
	t.Parallel()
	const (
		students = 20
		each     = 15
		total    = students * each
		outage   = 3 * time.Second
	)
	s := apptest.New(t, streams.StreamConfig{})
	addr, crash := serveCrashable(t, s)
	s.StartWorker(t, worker.Config{})
	ctx := t.Context()
	c := client.New("http://"+addr, client.Options{}) // the defaults: 30s a call
	t.Cleanup(c.CloseIdleConnections)

	clients := make([]*client.Client, students)
	ids := make([]string, students)
	for i := range clients {
		st, token, err := c.Signup(ctx, fmt.Sprintf("student-%02d@example.com", i), "Student", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		clients[i], ids[i] = c.WithToken(token), st.ID
		if _, err := clients[i].User(ctx); err != nil { // the first instance now caches the token
			t.Fatal(err)
		}
	}

	type result struct {
		sub   client.Submission
		quiz  string
		score int
		err   error
	}
	results := make([][]result, students)
	var done atomic.Int64
	var wg sync.WaitGroup
	for i := range students {
		results[i] = make([]result, each)
		wg.Go(func() {
			for j := range each {
				q := s.Quizzes[(i*each+j)%len(s.Quizzes)]
				right := (i + j) % (len(q.Questions) + 1)
				sub, err := clients[i].SubmitAttempt(ctx, q.ID.String(), apptest.AnswersFor(q, right))
				results[i][j] = result{sub, q.ID.String(), right, err}
				done.Add(1)
			}
		})
	}

	apptest.WaitFor(t, 60*time.Second, "a third of the submissions", func() bool { return done.Load() >= total/3 })
	crash() // the port refuses connections from here
	stopped := time.Now()
	doneAtStop := done.Load()
	// The outage is the fault injected, not a wait for a condition.
	time.Sleep(outage)
	doneInOutage := done.Load() - doneAtStop
	cfg := s.Config(t)
	cfg.API, cfg.ListenAddr = true, addr
	second := s.Start(t, cfg) // a new instance with an empty token cache, on the same address
	t.Logf("API down for %s after %d of %d submissions; %d completed meanwhile", time.Since(stopped).Round(time.Millisecond), doneAtStop, total, doneInOutage)
	wg.Wait()
	// Retries of a try that was published though its client never heard:
	// the crash guarantees one, and without them the exactly-once checks
	// below could not fail.
	found := counter(t, second.Registry, "quizstream_api_attempt_publishes_total", "result", "duplicate")
	t.Logf("%v retries found their attempt already in the event log", found)
	if found == 0 {
		t.Error("no retry met an attempt published before the crash: the outage tested no unknown outcome")
	}

	retried := 0
	for i := range results {
		for j, r := range results[i] {
			if r.err != nil {
				t.Fatalf("student %d submission %d: %v (after %d tries)", i, j, r.err, r.sub.Tries)
			}
			a := r.sub.Attempt
			if a.StudentID != ids[i] || a.QuizID != r.quiz || a.Score != r.score || a.MaxScore == 0 ||
				(a.Status != client.StatusAccepted && a.Status != client.StatusRecorded) {
				t.Errorf("student %d submission %d: %+v, want score %d on quiz %s", i, j, a, r.score, r.quiz)
			}
			if r.sub.Tries > 1 {
				retried++
			}
		}
	}
	if retried == 0 || doneAtStop == total {
		t.Fatalf("no submission met the outage (%d retried, %d done before it)", retried, doneAtStop)
	}
	t.Logf("%d of %d submissions were retried", retried, total)

	s.WaitDrained(t, 60*time.Second)
	if n := s.CountAttempts(t); n != total {
		t.Errorf("%d stored attempts, want %d", n, total)
	}
	keys := map[string]bool{}
	for i := range results {
		student := uuid.MustParse(ids[i])
		for j, r := range results[i] {
			a := r.sub.Attempt
			if keys[r.sub.IdempotencyKey] {
				t.Fatalf("key %q used for two submissions", r.sub.IdempotencyKey)
			}
			keys[r.sub.IdempotencyKey] = true
			rows := storetest.Int(t, s.DB, `SELECT count(*) FROM attempts WHERE student_id = $1 AND idempotency_key = $2`, student, r.sub.IdempotencyKey)
			same := storetest.Int(t, s.DB, `
				SELECT count(*) FROM attempts
				WHERE student_id = $1 AND idempotency_key = $2 AND id = $3 AND quiz_id = $4
					AND score = $5 AND max_score = $6 AND submitted_at = $7 AND status = 'recorded'`,
				student, r.sub.IdempotencyKey, uuid.MustParse(a.AttemptID), uuid.MustParse(a.QuizID), a.Score, a.MaxScore, a.SubmittedAt)
			if rows != 1 || same != 1 {
				t.Errorf("student %d submission %d (key %s): %d rows, %d as the 202 said (%+v)", i, j, r.sub.IdempotencyKey, rows, same, a)
			}
		}
	}
}

// serveCrashable serves an API instance on the stack, by hand on a free
// port, and returns its address and crash: crash makes the instance lose
// every answer it has not sent yet, as a crash would (their requests'
// attempts were published, unknown to their clients), waits until at
// least one is lost, and stops the instance. An apptest instance owns its
// listener, so it cannot lose an answer after its handler ran.
func serveCrashable(t *testing.T, s *apptest.Stack) (addr string, crash func()) {
	t.Helper()
	srv, err := api.NewServer(t.Context(), api.Config{
		Store: s.Store, Events: s.Log, Notices: events.NewNotices(s.NC),
		Logger: apptest.Logger(t), ContentReload: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
	return inner.Addr().String(), func() {
		ln.cut.Store(true)
		select {
		case <-ln.lost:
		case <-time.After(30 * time.Second):
			t.Fatal("no answer was lost in 30s: were there requests in flight?")
		}
		stop()
	}
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
