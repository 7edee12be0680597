package client_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store/storetest"
)

// TestSubmissionsSurviveAPIRestart takes the only API instance down for
// three seconds in the middle of concurrent submissions, losing the answers
// in flight (their attempts published, unknown to their clients), and
// serves a new instance on the same address: every
// submission must still end in a 202 (the client retried through the outage
// with the same key) and be stored exactly once, as its 202 said.
func TestSubmissionsSurviveAPIRestart(t *testing.T) {
	t.Parallel()
	const (
		students = 20
		each     = 15
		total    = students * each
		outage   = 3 * time.Second
	)
	s := newStack(t)
	first := s.serveAPI(t, "127.0.0.1:0", nil)
	s.startWorker(t)
	ctx := t.Context()
	c := client.New("http://"+first.addr, client.Options{}) // the defaults: 30s a call
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
				q := s.order[(i*each+j)%len(s.order)]
				right := (i + j) % (len(q.Questions) + 1)
				sub, err := clients[i].SubmitAttempt(ctx, q.ID.String(), answers(q, right))
				results[i][j] = result{sub, q.ID.String(), right, err}
				done.Add(1)
			}
		})
	}

	waitFor(t, 60*time.Second, "a third of the submissions", func() bool { return done.Load() >= total/3 })
	first.crash() // the port refuses connections from here
	stopped := time.Now()
	doneAtStop := done.Load()
	// The outage is the fault injected, not a wait for a condition.
	time.Sleep(outage)
	doneInOutage := done.Load() - doneAtStop
	reg := prometheus.NewRegistry()
	s.serveAPI(t, first.addr, reg) // a new instance with an empty token cache, on the same address
	t.Logf("API down for %s after %d of %d submissions; %d completed meanwhile", time.Since(stopped).Round(time.Millisecond), doneAtStop, total, doneInOutage)
	wg.Wait()
	// Retries of a try that was published though its client never heard:
	// the crash guarantees one, and without them the exactly-once checks
	// below could not fail.
	found := counter(t, reg, "quizstream_api_attempt_publishes_total", "result", "duplicate")
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

	s.waitDrained(t, 60*time.Second)
	db := storetest.DB(t, s.dbURL)
	if n := storetest.Int(t, db, `SELECT count(*) FROM attempts`); n != total {
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
			rows := storetest.Int(t, db, `SELECT count(*) FROM attempts WHERE student_id = $1 AND idempotency_key = $2`, student, r.sub.IdempotencyKey)
			same := storetest.Int(t, db, `
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
