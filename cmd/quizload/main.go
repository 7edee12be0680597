// Command quizload drives a running quizstream API the way exam day does:
// it signs students up, has them submit quiz attempts concurrently (some
// re-sent with the same Idempotency-Key), and reports how many attempts per
// second were accepted and then recorded. It sends traffic only to -url.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quizload:", err)
		os.Exit(1)
	}
}

type options struct {
	url         string
	students    int
	attempts    int
	concurrency int
	resend      float64
	timeout     time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("quizload", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the API")
	fs.IntVar(&o.students, "students", 50, "students to sign up")
	fs.IntVar(&o.attempts, "attempts", 5000, "attempts to submit in all")
	fs.IntVar(&o.concurrency, "concurrency", 50, "requests in flight")
	fs.Float64Var(&o.resend, "resend", 0.1, "share of attempts re-sent with the same Idempotency-Key")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to wait for every attempt to be recorded")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}

	var courses struct {
		Courses []struct {
			QuizIDs []string `json:"quiz_ids"`
		} `json:"courses"`
	}
	if _, err := call(ctx, c, "GET", o.url+"/api/v1/courses", "", nil, nil, &courses); err != nil {
		return err
	}
	var quizIDs []string
	for _, co := range courses.Courses {
		quizIDs = append(quizIDs, co.QuizIDs...)
	}
	if len(quizIDs) == 0 {
		return errors.New("the API serves no quizzes")
	}
	quizzes := map[string]quiz{}
	for _, id := range quizIDs[:min(len(quizIDs), 20)] {
		var q quiz
		if _, err := call(ctx, c, "GET", o.url+"/api/v1/quizzes/"+id, "", nil, nil, &q); err != nil {
			return err
		}
		quizzes[id] = q
	}

	run := fmt.Sprintf("%x", rand.Uint64())
	tokens := make([]string, o.students)
	start := time.Now()
	err := parallel(ctx, o.concurrency, o.students, func(i int) error {
		var r struct {
			Token string `json:"token"`
		}
		body := map[string]string{"email": fmt.Sprintf("load-%s-%d@example.com", run, i), "name": "Load", "password": "load test password"}
		if _, err := call(ctx, c, "POST", o.url+"/api/v1/signup", "", nil, body, &r); err != nil {
			return err
		}
		tokens[i] = r.Token
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "signed up %d students in %s\n", o.students, time.Since(start).Round(time.Millisecond))

	type job struct {
		student int
		quiz    string
		key     string
		body    map[string]any
	}
	jobs := make([]job, 0, o.attempts)
	ids := make([]string, 0, len(quizzes))
	for id := range quizzes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i := 0; len(jobs) < o.attempts; i++ {
		q := quizzes[ids[i%len(ids)]]
		answers := make([]map[string]string, 0, len(q.Questions))
		for _, qu := range q.Questions {
			answers = append(answers, map[string]string{"question_id": qu.ID, "choice_id": qu.Choices[rand.IntN(len(qu.Choices))].ID})
		}
		j := job{student: i % o.students, quiz: q.ID, key: fmt.Sprintf("%s-%d", run, i), body: map[string]any{"answers": answers}}
		jobs = append(jobs, j)
		if rand.Float64() < o.resend && len(jobs) < o.attempts {
			jobs = append(jobs, j) // the same submission again: a client retry
		}
	}
	rand.Shuffle(len(jobs), func(a, b int) { jobs[a], jobs[b] = jobs[b], jobs[a] })

	var accepted, failed, retries atomic.Int64
	lat := make([]time.Duration, len(jobs))
	distinct := sync.Map{}
	start = time.Now()
	err = parallel(ctx, o.concurrency, len(jobs), func(i int) error {
		j := jobs[i]
		t0 := time.Now()
		var a struct {
			AttemptID string `json:"attempt_id"`
		}
		// Like a real client: a 503 or a lost connection is retried with
		// the same key, which makes it safe.
		var status int
		var err error
		for try, wait := 0, 50*time.Millisecond; try < 10; try, wait = try+1, min(2*wait, time.Second) {
			status, err = call(ctx, c, "POST", o.url+"/api/v1/quizzes/"+j.quiz+"/attempts", tokens[j.student],
				map[string]string{"Idempotency-Key": j.key}, j.body, &a)
			if (err == nil || status != 0) && status != http.StatusServiceUnavailable {
				break
			}
			retries.Add(1)
			time.Sleep(wait)
		}
		lat[i] = time.Since(t0)
		if err != nil || status != http.StatusAccepted {
			failed.Add(1)
			return nil
		}
		accepted.Add(1)
		distinct.Store(a.AttemptID, j.student)
		return nil
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	nDistinct := 0
	perStudent := make([]int, o.students)
	distinct.Range(func(_, v any) bool { nDistinct++; perStudent[v.(int)]++; return true })
	fmt.Fprintf(out, "submitted %d attempts (%d distinct) in %s: %.0f accepted/s, %d failed, %d retries; latency p50 %s p99 %s\n",
		accepted.Load(), nDistinct, elapsed.Round(time.Millisecond), float64(accepted.Load())/elapsed.Seconds(), failed.Load(), retries.Load(),
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))

	// Recorded means counted in progress, which only stored attempts are.
	deadline := time.Now().Add(o.timeout)
	for {
		recorded := 0
		for i, tok := range tokens {
			var p struct {
				Courses []struct {
					Attempts int `json:"attempts"`
				} `json:"courses"`
			}
			if _, err := call(ctx, c, "GET", o.url+"/api/v1/student-progress", tok, nil, nil, &p); err != nil {
				return err
			}
			n := 0
			for _, co := range p.Courses {
				n += co.Attempts
			}
			recorded += min(n, perStudent[i])
		}
		if recorded >= nDistinct {
			total := time.Since(start)
			fmt.Fprintf(out, "all %d distinct attempts recorded %s after the first submit: %.0f stored/s end to end\n",
				nDistinct, total.Round(time.Millisecond), float64(nDistinct)/total.Seconds())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d attempts recorded after %s", recorded, nDistinct, o.timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type quiz struct {
	ID        string `json:"id"`
	Questions []struct {
		ID      string `json:"id"`
		Choices []struct {
			ID string `json:"id"`
		} `json:"choices"`
	} `json:"questions"`
}

// parallel runs f(0..n-1) on `workers` goroutines and returns the first error.
func parallel(ctx context.Context, workers, n int, f func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func call(ctx context.Context, c *http.Client, method, url, token string, header map[string]string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}
