package exams_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// The exam-start surge: 2,000 students start the same exam within one
// second. A start is the quiz from the snapshot, one read and two
// (batched) publishes to the streams; then each student reads the quiz
// again with its ETag: a 304. The API instance sends PostgreSQL no
// statement through it all (its tokens are cached, as for attempt POSTs).
// It logs the starts' latencies: p50 and p99.
func TestStartSurge(t *testing.T) {
	// Not parallel: see doc.go.
	const students = 2000
	s := apptest.New(t, streams.StreamConfig{})
	// Tokens are confirmed once, before the surge, and trusted through it;
	// every student comes from one address.
	// Publishes may wait longer than in production: under the race
	// detector, with CI running other packages beside it, the surge is
	// many times slower, and a 503 is not what this measures. A client
	// retries a 503 until its call's deadline: one that outlasts a few
	// publish timeouts.
	in := s.StartAPI(t, api.Config{TokenMissRate: -1, TokenCacheTTL: 10 * time.Minute,
		PublishTimeout: 20 * time.Second, WriteTimeout: 30 * time.Second})
	const callDeadline = 3 * time.Minute
	xl := examLog(t, s)
	people := apptest.NewStudents(t, s, "surge", students)
	clients := make([]*client.Client, students)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, st := range people {
		clients[i] = apptest.ClientWith(in.URL, client.Options{Token: st.Token, Deadline: callDeadline})
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := clients[i].User(t.Context()); err != nil {
				t.Errorf("warm the token: %v", err)
			}
		})
	}
	wg.Wait()
	quiz := store.DemoSprintID.String()
	_, info, err := clients[0].Quiz(t.Context(), quiz)
	if err != nil {
		t.Fatal(err)
	}

	before := in.App.Store.Queries()
	latencies := make([]time.Duration, students)
	sessions := make([]string, students)
	errs := make([]error, students)
	tries := make([][]int, students)
	start := time.Now()
	for i, c := range clients {
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / students)))
			t0 := time.Now()
			// As a client does: a 503 (a publish slower than the publish
			// timeout) is retried with the start's Idempotency-Key.
			ctx, statuses := apptest.Statuses(t.Context())
			sess, err := c.StartSession(ctx, quiz)
			latencies[i], sessions[i], errs[i], tries[i] = time.Since(t0), sess.SessionID, err, statuses()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The quiz, as the clients holding it ask for it again: a 304 each.
	for _, c := range clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, again, err := c.Quiz(t.Context(), quiz, client.IfNoneMatch(info.ETag)); err != nil || !again.NotModified {
				t.Errorf("conditional quiz read: %+v, %v", again, err)
			}
		})
	}
	wg.Wait()
	queries := in.App.Store.Queries() - before
	retried := 0
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if n := len(tries[i]); tries[i][n-1] != http.StatusAccepted || slices.ContainsFunc(tries[i][:n-1], func(s int) bool { return s != http.StatusServiceUnavailable }) {
			t.Errorf("start %d answered %v, want 202 after 503s if any", i, tries[i])
		}
		if len(tries[i]) > 1 {
			retried++
		}
	}
	if queries != 0 {
		t.Errorf("the API sent %d statements to PostgreSQL during the surge, want 0", queries)
	}
	if slices.Sort(sessions); len(slices.Compact(sessions)) != students {
		t.Errorf("%d distinct sessions for %d students", len(slices.Compact(sessions)), students)
	}
	msgs, err := xl.Events(t.Context(), events.ExamSubjectPrefix+".>", 0, 2*students)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != students {
		t.Errorf("%d events in the stream, want %d starts", len(msgs), students)
	}
	slices.Sort(latencies)
	t.Logf("%d starts in %s: p50 %s, p99 %s, max %s (%d retried after a 503), %d statements to PostgreSQL", students,
		elapsed.Round(time.Millisecond), latencies[students/2].Round(time.Millisecond), latencies[students*99/100].Round(time.Millisecond),
		latencies[students-1].Round(time.Millisecond), retried, queries)
}
