package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// submission is one logical submission of TestEndToEnd and every 202 it
// got.
type submission struct {
	student int
	key     string
	quiz    store.Quiz
	answers []client.Answer
	score   int
	first   client.Attempt   // the answer to the original
	retries []client.Attempt // the answers to re-sends of it
	late    bool             // re-sent only after the workers drained
}

// Fifty students submit 2,000 attempts concurrently, a tenth of them sent
// twice (racing, right after, or after the workers stored them): every 202
// is right, the stream and the database hold each submission exactly once
// as its 202 said, and every student's reads agree with what they were
// told.
func TestEndToEnd(t *testing.T) {
	// Not parallel: it reports throughput, so it runs on its own.
	const (
		students   = 50
		perStudent = 40 // 2,000 attempts; every 10th is re-sent once
	)
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	s.StartWorker(t, worker.Config{})

	// Twelve quizzes over four courses, three each.
	var pool []store.Quiz
	for _, c := range []int{0, 3, 7, 19} {
		for _, q := range []int{0, 4, 9} {
			pool = append(pool, s.Quizzes[c*store.DefaultDemo.Quizzes+q])
		}
	}
	clients, ids := apptest.SignupMany(t, a.URL, "e2e", students)

	subs := make([][]*submission, students)
	var accepted atomic.Int64
	post := func(c *client.Client, sub *submission, answers []client.Answer) (client.Attempt, error) {
		got, err := apptest.Submit(t.Context(), c, sub.quiz.ID.String(), sub.key, answers)
		if err != nil {
			return got, fmt.Errorf("student %d key %s: %v", sub.student, sub.key, err)
		}
		accepted.Add(1)
		return got, nil
	}
	start := time.Now()
	var wg sync.WaitGroup
	for j := range students {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(7, uint64(j)))
			c := clients[j]
			for i := range perStudent {
				q := pool[rng.IntN(len(pool))]
				right := rng.IntN(len(q.Questions) + 1)
				answers := apptest.AnswersFor(q, right)
				if i%7 == 3 {
					// A partial list: unanswered questions score zero.
					answers = answers[:right]
				}
				sub := &submission{student: j, key: fmt.Sprintf("e2e-%02d-%02d", j, i), quiz: q, answers: answers, score: right}
				subs[j] = append(subs[j], sub)
				var err error
				switch {
				case i%20 == 0:
					// The re-send races the original.
					var (
						pair [2]client.Attempt
						errs [2]error
						go2  sync.WaitGroup
					)
					ready := make(chan struct{})
					for k := range 2 {
						go2.Go(func() {
							<-ready
							pair[k], errs[k] = post(c, sub, shuffled(answers, rng2(j, i, k)))
						})
					}
					close(ready)
					go2.Wait()
					sub.first, sub.retries = pair[0], []client.Attempt{pair[1]}
					err = errors.Join(errs[:]...)
				case i%20 == 10:
					sub.first, err = post(c, sub, answers)
					if err == nil && i < 20 {
						// Re-sent right after its 202, answers in another order.
						var again client.Attempt
						again, err = post(c, sub, shuffled(answers, rng))
						sub.retries = append(sub.retries, again)
					}
					sub.late = i >= 20
				default:
					sub.first, err = post(c, sub, answers)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	n := accepted.Load()
	t.Logf("accepted %d POSTs (%d distinct attempts) from %d concurrent students in %s: %.0f 202s/s",
		n, students*perStudent, students, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	drainStart := time.Now()
	s.WaitDrained(t, 60*time.Second)
	t.Logf("workers drained the stream %s after the last 202", time.Since(drainStart).Round(time.Millisecond))

	// Late re-sends: after the workers stored the originals.
	for j := range students {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(8, uint64(j)))
			for _, sub := range subs[j] {
				if !sub.late {
					continue
				}
				again, err := post(clients[j], sub, shuffled(sub.answers, rng))
				if err != nil {
					t.Error(err)
					return
				}
				if again.Status != "recorded" {
					t.Errorf("late re-send of %s: status %q, want recorded", sub.key, again.Status)
				}
				sub.retries = append(sub.retries, again)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s.WaitDrained(t, 30*time.Second)

	// Every 202: the right student, quiz and score; re-sends the same attempt.
	var all []*submission
	distinct := map[string]bool{}
	retries := 0
	for j := range students {
		for _, sub := range subs[j] {
			all = append(all, sub)
			f := sub.first
			if f.StudentID != ids[j] || f.QuizID != sub.quiz.ID.String() || f.Score != sub.score ||
				f.MaxScore != len(sub.quiz.Questions) || f.SubmittedAt.IsZero() || f.AttemptID == "" {
				t.Errorf("student %d key %s: 202 %+v, want student %s quiz %s score %d of %d",
					j, sub.key, f, ids[j], sub.quiz.ID, sub.score, len(sub.quiz.Questions))
			}
			if f.Status != "accepted" && f.Status != "recorded" {
				t.Errorf("key %s: status %q", sub.key, f.Status)
			}
			if distinct[f.AttemptID] {
				t.Errorf("key %s: attempt id %s given to two submissions", sub.key, f.AttemptID)
			}
			distinct[f.AttemptID] = true
			for _, r := range sub.retries {
				retries++
				if err := apptest.SameAttempt(f, r); err != nil {
					t.Errorf("re-send of %s: %v", sub.key, err)
				}
				if r.Status != "accepted" && r.Status != "recorded" {
					t.Errorf("re-send of %s: status %q", sub.key, r.Status)
				}
			}
			if len(sub.retries) > 0 && sub.first.Status != "accepted" && sub.retries[0].Status != "accepted" {
				t.Errorf("key %s: neither copy was answered as newly accepted", sub.key)
			}
		}
	}
	if retries != students*perStudent/10 {
		t.Errorf("%d re-sends, want %d", retries, students*perStudent/10)
	}

	// The stream and the database hold each submission exactly once.
	if got := eventstest.StreamMessages(t, s.JS, s.Stream.Name); got != uint64(len(all)) {
		t.Errorf("stream holds %d messages, want %d", got, len(all))
	}
	if got := s.CountAttempts(t); got != len(all) {
		t.Errorf("database holds %d attempts, want %d", got, len(all))
	}
	checkStored(t, s, ids, all)
	if t.Failed() {
		t.FailNow()
	}

	// Each student's reads agree with the 202 bodies they got.
	limits := []int{0, 7, 13, 40, 100} // 0: the default, 20
	for j := range students {
		wg.Go(func() {
			c := clients[j]
			var mine []client.Attempt
			for _, sub := range subs[j] {
				mine = append(mine, sub.first)
			}
			if err := apptest.CheckProgress(t.Context(), c, apptest.WantProgress(mine)); err != nil {
				t.Errorf("student %d: %v", j, err)
			}
			limit := limits[j%len(limits)]
			listed, err := apptest.ListAttempts(t.Context(), c, client.AttemptsQuery{Limit: limit})
			if limit == 0 {
				limit = 20
			}
			if err != nil {
				t.Errorf("student %d: %v", j, err)
				return
			}
			want := apptest.NewestFirst(mine)
			if !slices.Equal(apptest.AttemptIDs(listed), apptest.AttemptIDs(want)) {
				t.Errorf("student %d: GET /attempts (limit %d) listed\n%v\nwant\n%v", j, limit, apptest.AttemptIDs(listed), apptest.AttemptIDs(want))
				return
			}
			for i, got := range listed {
				if err := apptest.SameAttempt(want[i], got); err != nil || got.Status != "recorded" {
					t.Errorf("student %d: listed %+v, want %+v recorded (%v)", j, got, want[i], err)
				}
			}
			for _, w := range mine {
				var got client.Attempt
				if err := apptest.Expect(t.Context(), http.StatusOK, func(ctx context.Context) (err error) {
					got, err = c.Attempt(ctx, w.AttemptID)
					return err
				}); err != nil {
					t.Errorf("student %d: GET attempt %s: %v", j, w.AttemptID, err)
					continue
				}
				if err := apptest.SameAttempt(w, got); err != nil || got.Status != "recorded" {
					t.Errorf("student %d: GET attempt %s = %+v, want %+v recorded (%v)", j, w.AttemptID, got, w, err)
				}
			}
		})
	}
	wg.Wait()
}

// checkStored checks that the database holds every submission exactly
// once per (student, Idempotency-Key), as the first 202 said, recorded.
func checkStored(t *testing.T, s *apptest.Stack, ids []string, all []*submission) {
	t.Helper()
	type rowKey struct{ student, key string }
	perKey := map[rowKey]int{}
	rows, err := s.DB.Query(t.Context(),
		`SELECT student_id::text, coalesce(idempotency_key, ''), count(*) FROM attempts GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k rowKey
		var n int
		if err := rows.Scan(&k.student, &k.key, &n); err != nil {
			t.Fatal(err)
		}
		perKey[k] = n
		if n != 1 {
			t.Errorf("student %s key %q: %d stored attempts, want 1", k.student, k.key, n)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	type storedRow struct {
		id, quiz, status string
		score, maxScore  int
		submittedAt      time.Time
	}
	stored := map[rowKey]storedRow{}
	rows, err = s.DB.Query(t.Context(),
		`SELECT student_id::text, coalesce(idempotency_key, ''), id::text, quiz_id::text, status, score, max_score, submitted_at FROM attempts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k rowKey
		var r storedRow
		if err := rows.Scan(&k.student, &k.key, &r.id, &r.quiz, &r.status, &r.score, &r.maxScore, &r.submittedAt); err != nil {
			t.Fatal(err)
		}
		stored[k] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range all {
		k := rowKey{ids[sub.student], sub.key}
		r, ok := stored[k]
		f := sub.first
		switch {
		case !ok || perKey[k] != 1:
			t.Errorf("student %s key %s: %d stored attempts, want 1", k.student, k.key, perKey[k])
		case r.id != f.AttemptID || r.quiz != f.QuizID || r.score != f.Score || r.maxScore != f.MaxScore ||
			!r.submittedAt.Equal(f.SubmittedAt) || r.status != "recorded":
			t.Errorf("student %s key %s: stored %+v, the 202 said %+v", k.student, k.key, r, f)
		}
	}
}
