package load

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/quizstream/quizstream/client"
)

// Verification is the check after a run: every Idempotency-Key answered
// 202 must be stored exactly once, as recorded, with the score and
// submitted_at of its 202, and each student's progress must count exactly
// those attempts. Attempts whose outcome stayed unknown (no 202 after
// every try) may be stored or not, but at most once.
type Verification struct {
	// Students is how many students were checked.
	Students int `json:"students"`
	// Keys counts the distinct Idempotency-Keys answered 202.
	Keys int `json:"keys"`
	// Recorded counts those read back (GET /attempts/{id}) as recorded,
	// with the quiz, score and submitted_at of their 202.
	Recorded int `json:"recorded"`
	// NotRecorded counts keys not read as recorded within VerifyTimeout.
	NotRecorded int `json:"not_recorded"`
	// Mismatched counts keys read back with another quiz, score or
	// submitted_at than their 202, or with status failed.
	Mismatched int `json:"mismatched"`
	// Listed counts keys found exactly once in the student's attempts
	// list; Missing those not in it, Duplicated those in it more than once.
	Listed     int `json:"listed"`
	Missing    int `json:"missing"`
	Duplicated int `json:"duplicated"`
	// Unknown counts keys sent without a 202 heard (gave up after
	// MaxTries, or refused); Extra counts listed attempts that are none of
	// the 202s, which only Unknown keys may explain.
	Unknown int `json:"unknown"`
	Extra   int `json:"extra"`
	// ProgressChecked counts students whose progress was read;
	// ProgressMismatched those whose counts or best scores differ from
	// their recorded attempts.
	ProgressChecked    int `json:"progress_checked"`
	ProgressMismatched int `json:"progress_mismatched"`
	// SettleSeconds is how long after the load stopped every accepted
	// attempt read as recorded.
	SettleSeconds float64 `json:"settle_s"`
	// Problems holds the first problems found.
	Problems []string `json:"problems,omitempty"`
	// OK is true when nothing above is wrong.
	OK bool `json:"ok"`
}

const maxProblems = 20

// check is one student's findings, merged into the Verification.
type check struct {
	v        Verification
	settled  time.Time
	problems []string
}

func (c *check) problem(format string, args ...any) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// verify checks every student, VerifyConcurrency at a time.
func (r *runner) verify(ctx context.Context) (Verification, error) {
	begin := time.Now()
	deadline := begin.Add(r.cfg.VerifyTimeout)
	var mu sync.Mutex
	var v Verification
	var lastSettled time.Time
	sem := make(chan struct{}, r.cfg.VerifyConcurrency)
	var wg sync.WaitGroup
	r.studentsMu.Lock()
	students := append([]*student(nil), r.students...)
	r.studentsMu.Unlock()
	for _, s := range students {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := r.verifyStudent(ctx, s, deadline)
			mu.Lock()
			defer mu.Unlock()
			v.Students++
			v.Keys += c.v.Keys
			v.Recorded += c.v.Recorded
			v.NotRecorded += c.v.NotRecorded
			v.Mismatched += c.v.Mismatched
			v.Listed += c.v.Listed
			v.Missing += c.v.Missing
			v.Duplicated += c.v.Duplicated
			v.Unknown += c.v.Unknown
			v.Extra += c.v.Extra
			v.ProgressChecked += c.v.ProgressChecked
			v.ProgressMismatched += c.v.ProgressMismatched
			for _, p := range c.problems {
				if len(v.Problems) < maxProblems {
					v.Problems = append(v.Problems, p)
				}
			}
			if c.settled.After(lastSettled) {
				lastSettled = c.settled
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return v, err
	}
	if !lastSettled.IsZero() {
		v.SettleSeconds = lastSettled.Sub(begin).Seconds()
	}
	v.OK = v.Recorded == v.Keys && v.Listed == v.Keys && v.NotRecorded+v.Mismatched+v.Missing+v.Duplicated == 0 &&
		v.Extra <= v.Unknown && v.ProgressMismatched == 0 && v.ProgressChecked == v.Students && len(v.Problems) == 0
	return v, nil
}

// verifyStudent waits until the student's list shows every 202 as
// recorded, then reads each back, counts each key in the list, and
// compares progress with what was recorded.
func (r *runner) verifyStudent(ctx context.Context, s *student, deadline time.Time) check {
	var c check
	s.mu.Lock()
	want := map[string]*submission{} // attempt id -> its submission
	keyOf := map[string]string{}
	for key, sub := range s.sent {
		if !sub.accepted {
			c.v.Unknown++
			continue
		}
		c.v.Keys++
		if other, dup := keyOf[sub.attempt.AttemptID]; dup {
			c.v.Mismatched++
			c.problem("student %s: keys %s and %s were both answered with attempt %s", s.id, other, key, sub.attempt.AttemptID)
			continue
		}
		want[sub.attempt.AttemptID] = sub
		keyOf[sub.attempt.AttemptID] = key
	}
	s.mu.Unlock()

	// Wait until every accepted attempt is listed as recorded.
	var list []client.Attempt
	for {
		var err error
		list, err = s.own.AllAttempts(ctx, client.AttemptsQuery{})
		if err == nil && allRecorded(list, want) {
			c.settled = time.Now()
			break
		}
		if ctx.Err() != nil {
			return c
		}
		if time.Now().After(deadline) {
			if err != nil {
				c.problem("student %s: list attempts: %v", s.id, err)
			}
			break
		}
		sleep(ctx, 100*time.Millisecond)
	}
	count := map[string]int{}
	for _, a := range list {
		count[a.AttemptID]++
	}

	// Each key: read back, listed once.
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sub := want[id]
		switch n := count[id]; {
		case n == 0:
			c.v.Missing++
			c.problem("student %s key %s: attempt %s is not in the attempts list", s.id, keyOf[id], id)
		case n > 1:
			c.v.Duplicated++
			c.problem("student %s key %s: attempt %s is listed %d times", s.id, keyOf[id], id, n)
		default:
			c.v.Listed++
		}
		got, err := s.own.Attempt(ctx, id)
		switch {
		case err != nil:
			c.v.NotRecorded++
			c.problem("student %s key %s: GET /attempts/%s: %v", s.id, keyOf[id], id, err)
		case got.Status == client.StatusAccepted:
			c.v.NotRecorded++
			c.problem("student %s key %s: attempt %s still accepted after %s", s.id, keyOf[id], id, r.cfg.VerifyTimeout)
		case got.Status != client.StatusRecorded || got.Score != sub.attempt.Score || got.QuizID != sub.quiz ||
			!got.SubmittedAt.Equal(sub.attempt.SubmittedAt) || got.StudentID != s.id:
			c.v.Mismatched++
			c.problem("student %s key %s: stored %+v, the 202 said %+v", s.id, keyOf[id], got, sub.attempt)
		default:
			c.v.Recorded++
		}
	}

	// What progress must say: every recorded attempt listed (the 202s and
	// any unknown-outcome attempt that was stored), once each.
	type agg struct{ attempts, best int }
	per := map[string]*agg{} // quiz id
	for _, a := range list {
		if _, ok := want[a.AttemptID]; !ok {
			c.v.Extra++
		}
		if a.Status != client.StatusRecorded {
			continue
		}
		g := per[a.QuizID]
		if g == nil {
			g = &agg{best: -1}
			per[a.QuizID] = g
		}
		g.attempts++
		g.best = max(g.best, a.Score)
	}
	if c.v.Extra > c.v.Unknown {
		c.problem("student %s: %d attempts listed that no 202 announced, %d keys of unknown outcome", s.id, c.v.Extra, c.v.Unknown)
	}
	p, err := s.own.Progress(ctx)
	if err != nil {
		c.problem("student %s: progress: %v", s.id, err)
		return c
	}
	c.v.ProgressChecked = 1
	seen := map[string]bool{}
	bad := false
	for _, co := range p.Courses {
		attempts, attempted := 0, 0
		for quizID, g := range per {
			if r.content.courseOf[quizID] != co.CourseID {
				continue
			}
			attempts += g.attempts
			attempted++
			if best, ok := co.BestScores[quizID]; !ok || best != g.best {
				bad = true
				c.problem("student %s quiz %s: progress best score %d (listed: %v), recorded best %d", s.id, quizID, best, ok, g.best)
			}
			seen[quizID] = true
		}
		if co.Attempts != attempts || co.QuizzesAttempted != attempted || len(co.BestScores) != attempted {
			bad = true
			c.problem("student %s course %s: progress counts %d attempts at %d quizzes (%d best scores), recorded %d at %d",
				s.id, co.CourseID, co.Attempts, co.QuizzesAttempted, len(co.BestScores), attempts, attempted)
		}
	}
	for quizID := range per {
		if !seen[quizID] {
			bad = true
			c.problem("student %s quiz %s: recorded attempts, but progress has no course for it", s.id, quizID)
		}
	}
	if bad {
		c.v.ProgressMismatched = 1
	}
	return c
}

func allRecorded(list []client.Attempt, want map[string]*submission) bool {
	recorded := make(map[string]bool, len(list))
	for _, a := range list {
		if a.Status != client.StatusAccepted {
			recorded[a.AttemptID] = true
		}
	}
	for id := range want {
		if !recorded[id] {
			return false
		}
	}
	return true
}
