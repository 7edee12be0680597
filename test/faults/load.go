package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
)

// LoadConfig shapes a Load.
type LoadConfig struct {
	// URLs are API instances: student i starts on URLs[i%len(URLs)] and
	// moves to the next one after a transport error.
	URLs []string
	// Students submit the attempts, each one at a time, with their tokens.
	Students []*client.Client
	// Attempts is how many distinct attempts (keys) are submitted in all.
	Attempts int
	// Rate paces new attempts, per second, for all students together
	// (open loop: attempts held up by a fault are caught up after it).
	// Zero sends them as fast as the students go.
	Rate float64
	// Prefix makes the Idempotency-Keys of this load.
	Prefix string
	// GiveUp bounds the retries of one attempt. Defaults to 45s.
	GiveUp time.Duration
}

// Request is one HTTP request of a Load.
type Request struct {
	Student, Attempt, Try int
	Start, End            time.Time
	Status                int // 0 on a transport error
	Err                   error
	Submitted             time.Time // submitted_at of a 202 body
}

// Load is students submitting attempts and retrying them like real
// clients: on a 503 or a transport error, the same key again after a
// growing delay (50ms to 1s), until a 202 or GiveUp. It sends each try
// itself (Submit), so that it sees and counts every failure.
type Load struct {
	cfg    LoadConfig
	s      *apptest.Stack
	ledger *Ledger
	ctx    context.Context
	http   *http.Client
	start  time.Time
	next   atomic.Int64
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	reqs     []Request
	problems []string
	gaveUp   int
}

// StartLoad starts cfg's students submitting, recording every 202 in l;
// the load is stopped when t ends if Wait did not see it finish.
func StartLoad(t testing.TB, s *apptest.Stack, l *Ledger, cfg LoadConfig) *Load {
	t.Helper()
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = 45 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: len(cfg.Students), DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}
	f := &Load{cfg: cfg, s: s, ledger: l, ctx: t.Context(), http: &http.Client{Timeout: 15 * time.Second, Transport: tr},
		start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for i := range cfg.Students {
		wg.Go(func() { f.student(i) })
	}
	go func() { wg.Wait(); tr.CloseIdleConnections(); close(f.done) }()
	t.Cleanup(func() { // a failed test must not leave students running
		select {
		case <-f.stop:
		default:
			close(f.stop)
		}
		<-f.done
	})
	return f
}

func (f *Load) student(i int) {
	// The student on every instance, through the load's own connections.
	apis := make([]*client.Client, len(f.cfg.URLs))
	for u, base := range f.cfg.URLs {
		apis[u] = client.New(base, client.Options{HTTPClient: f.http, Token: f.cfg.Students[i].Token()})
	}
	cur := i % len(apis)
	for {
		n := int(f.next.Add(1) - 1)
		if n >= f.cfg.Attempts {
			return
		}
		if f.cfg.Rate > 0 && !f.sleep(time.Until(f.start.Add(time.Duration(float64(n)/f.cfg.Rate*float64(time.Second))))) {
			return
		}
		quiz := f.s.Quizzes[n%len(f.s.Quizzes)]
		answers := apptest.AnswersFor(quiz, n%(len(quiz.Questions)+1))
		key := fmt.Sprintf("%s-%d", f.cfg.Prefix, n)
		giveUp := time.Now().Add(f.cfg.GiveUp)
		wait := 50 * time.Millisecond
		for try := 1; ; try++ {
			r := Request{Student: i, Attempt: n, Try: try, Start: time.Now()}
			var body client.Attempt
			r.Status, body, r.Err = Submit(f.ctx, apis[cur], quiz.ID.String(), key, answers)
			r.End = time.Now()
			if r.Err != nil {
				r.Status = 0
			}
			r.Submitted = body.SubmittedAt
			f.record(r)
			if r.Status == http.StatusAccepted {
				if err := f.ledger.Add(key, body); err != nil {
					f.problem(err.Error())
				}
				break
			}
			if r.Status != 0 && r.Status != http.StatusServiceUnavailable {
				f.problem(fmt.Sprintf("attempt %s: status %d, want 202 or 503", key, r.Status))
				break
			}
			if r.Status == 0 {
				cur = (cur + 1) % len(apis) // fail over
			}
			if time.Now().After(giveUp) {
				f.mu.Lock()
				f.gaveUp++
				f.mu.Unlock()
				f.problem(fmt.Sprintf("attempt %s: gave up after %d tries in %s (last: status %d, %v)", key, try, f.cfg.GiveUp, r.Status, r.Err))
				break
			}
			if !f.sleep(wait + rand.N(wait/2)) {
				return
			}
			wait = min(2*wait, time.Second)
		}
	}
}

// sleep waits d, or returns false at once when the load is stopped.
func (f *Load) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-f.stop:
		return false
	case <-tm.C:
		return true
	}
}

func (f *Load) record(r Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
}

func (f *Load) problem(p string) {
	f.mu.Lock()
	f.problems = append(f.problems, p)
	f.mu.Unlock()
}

// Duration returns how long the paced load takes when nothing holds it
// up, 0 when it is not paced.
func (f *Load) Duration() time.Duration {
	if f.cfg.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(f.cfg.Attempts) / f.cfg.Rate * float64(time.Second))
}

// SleepUntil waits until d after the load's start.
func (f *Load) SleepUntil(d time.Duration) { time.Sleep(time.Until(f.start.Add(d))) }

// LoadResult sums up a finished Load.
type LoadResult struct {
	Start           time.Time
	Took            time.Duration
	Attempts        int
	Acknowledged    int // attempts of this load that got a 202
	Requests        int
	Statuses        map[int]int
	TransportErrors int
	Retried         int // attempts that needed more than one request
	MaxTries        int
	GaveUp          int
	// FromEarlierTry counts attempts whose 202 carried a submitted_at from
	// before the request that got it: a try that failed (503, or no
	// answer) had published it after all, and the retry read it back.
	FromEarlierTry int
}

// String returns the figures in a sentence.
func (r LoadResult) String() string {
	return fmt.Sprintf("%d attempts (%d acknowledged) in %s (%.0f/s); %d requests: statuses %v, transport errors %d; %d attempts retried (at most %d tries; %d of them published by a failed try), %d given up",
		r.Attempts, r.Acknowledged, r.Took.Round(time.Millisecond), float64(r.Attempts)/r.Took.Seconds(),
		r.Requests, r.Statuses, r.TransportErrors, r.Retried, r.MaxTries, r.FromEarlierTry, r.GaveUp)
}

// Wait waits for every attempt to be settled (a 202, a refusal, or given
// up), fails t on what clients were wrongly told and on attempts that
// never got a 202, and sums the load up. It fails t now when the load
// does not finish within timeout.
func (f *Load) Wait(t testing.TB, timeout time.Duration) LoadResult {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(timeout):
		close(f.stop)
		<-f.done
		t.Fatalf("the load did not finish within %s", timeout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := LoadResult{Start: f.start, Attempts: f.cfg.Attempts, Requests: len(f.reqs), Statuses: map[int]int{}, GaveUp: f.gaveUp}
	acked := map[int]bool{}
	for _, r := range f.reqs {
		res.Took = max(res.Took, r.End.Sub(f.start))
		if r.Status == 0 {
			res.TransportErrors++
		} else {
			res.Statuses[r.Status]++
		}
		if r.Status == http.StatusAccepted {
			acked[r.Attempt] = true
			if r.Try > 1 && r.Submitted.Before(r.Start) {
				res.FromEarlierTry++
			}
		}
		if r.Try == 2 {
			res.Retried++
		}
		res.MaxTries = max(res.MaxTries, r.Try)
	}
	res.Acknowledged = len(acked)
	for i, p := range f.problems {
		if i == 10 {
			t.Errorf("... and %d more", len(f.problems)-10)
			break
		}
		t.Error(p)
	}
	if res.Acknowledged != f.cfg.Attempts {
		t.Errorf("%d of %d attempts never got a 202", f.cfg.Attempts-res.Acknowledged, f.cfg.Attempts)
	}
	return res
}

// Requests returns every request sent so far, in the order they ended.
func (f *Load) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// Latencies returns, sorted, how long the 202s of requests started in
// [from, to) took.
func (f *Load) Latencies(from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, r := range f.Requests() {
		if r.Status == http.StatusAccepted && !r.Start.Before(from) && r.Start.Before(to) {
			out = append(out, r.End.Sub(r.Start))
		}
	}
	slices.Sort(out)
	return out
}

// LongestGap returns the longest time between two consecutive 202s
// received during the load, and when it began.
func (f *Load) LongestGap() (time.Duration, time.Time) {
	var ends []time.Time
	for _, r := range f.Requests() {
		if r.Status == http.StatusAccepted {
			ends = append(ends, r.End)
		}
	}
	slices.SortFunc(ends, time.Time.Compare)
	var gap time.Duration
	var at time.Time
	for i := 1; i < len(ends); i++ {
		if d := ends[i].Sub(ends[i-1]); d > gap {
			gap, at = d, ends[i-1]
		}
	}
	return gap, at
}

// ServedAgain returns how long after at every student that sent a request
// after at had a 202 for one of them.
func (f *Load) ServedAgain(at time.Time) time.Duration {
	first := map[int]time.Time{}
	for _, r := range f.Requests() {
		if r.Status == http.StatusAccepted && !r.Start.Before(at) {
			if e, ok := first[r.Student]; !ok || r.End.Before(e) {
				first[r.Student] = r.End
			}
		}
	}
	var worst time.Duration
	for _, e := range first {
		worst = max(worst, e.Sub(at))
	}
	return worst
}

// Percentile returns the q-quantile (0 to 1) of sorted durations, rounded
// to 100µs; 0 for none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))].Round(100 * time.Microsecond)
}
