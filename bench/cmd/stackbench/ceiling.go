package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/events"
)

// ceilingRun is the publish ceiling at one concurrency.
type ceilingRun struct {
	When       string  `json:"when"`
	Publishers int     `json:"publishers"`
	Messages   int64   `json:"messages"`
	PerSecond  float64 `json:"per_second"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	Errors     int64   `json:"errors"`
}

// publishCeiling measures synchronous single-message publishes, each as the
// API publishes an attempt (own subject, Nats-Msg-Id, expected last
// subject sequence 0, a 10-answer event), on one connection to the stack's
// server, into a stream of its own with the attempts stream's storage.
func publishCeiling(ctx context.Context, natsURL string, d time.Duration, concurrencies []int) ([]ceilingRun, error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	const name = "BENCH_PUBLISH_CEILING"
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{"benchceiling.>"}, Storage: jetstream.FileStorage, Replicas: 1,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), name) }()
	_ = stream

	ev := events.AttemptSubmitted{
		AttemptID: uuid.New(), StudentID: uuid.New(), QuizID: uuid.New(), CourseID: uuid.New(),
		IdempotencyKey: "ceiling-0123456789abcdef-0-0", Score: 7, MaxScore: 10, SubmittedAt: time.Now().UTC(),
	}
	for range 10 {
		ev.Answers = append(ev.Answers, events.Answer{QuestionID: uuid.NewString(), ChoiceID: uuid.NewString()})
	}
	ev.AnswersHash = events.HashAnswers(ev.QuizID, ev.Answers)
	payload, err := events.Encode(ev)
	if err != nil {
		return nil, err
	}

	var out []ceilingRun
	for _, c := range concurrencies {
		var n, fails atomic.Int64
		var mu sync.Mutex
		h := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && time.Now().Before(end) {
					id := uuid.NewString()
					t0 := time.Now()
					_, err := js.PublishMsg(ctx, &nats.Msg{Subject: "benchceiling." + id, Data: payload},
						jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(0))
					if err != nil {
						fails.Add(1)
						continue
					}
					us := time.Since(t0).Microseconds()
					mu.Lock()
					_ = h.RecordValue(max(us, 1))
					mu.Unlock()
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return out, err
		}
		out = append(out, ceilingRun{
			Publishers: c, Messages: n.Load(), PerSecond: float64(n.Load()) / d.Seconds(),
			P50: float64(h.ValueAtQuantile(50)) / 1000, P99: float64(h.ValueAtQuantile(99)) / 1000, Errors: fails.Load(),
		})
	}
	return out, nil
}

// eventsBench runs the Go benchmarks of package eventlog, when it has any
// (the coalescing publisher's), and returns their result lines; none when
// the package has no benchmark.
func eventsBench(ctx context.Context, root string) ([]string, error) {
	list := exec.CommandContext(ctx, "go", "test", "-list", "^Benchmark", "./eventlog")
	list.Dir = root
	b, err := list.Output()
	if err != nil {
		return nil, fmt.Errorf("list the eventlog benchmarks: %w", err)
	}
	if !strings.Contains(string(b), "Benchmark") {
		return nil, nil
	}
	cmd := exec.CommandContext(ctx, "go", "test", "./eventlog", "-run", "^$", "-bench", ".", "-timeout", "10m")
	cmd.Dir = root
	b, err = cmd.CombinedOutput()
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "cpu:") || strings.HasPrefix(line, "    ") {
			lines = append(lines, line)
		}
	}
	if err != nil {
		return lines, fmt.Errorf("go test -bench ./eventlog: %v\n%s", err, b)
	}
	return lines, nil
}
