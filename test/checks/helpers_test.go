package checks_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// The demo's "sum" exercise: three test cases, one hidden.
var sumID = store.DemoExerciseSumID.String()

// program returns a source the fake Judge0 runs as a solution of the sum
// exercise (right) or as one that fails its hidden test, unique by tag.
func program(tag string, right bool) string {
	last := `"3000000000\n"`
	if !right {
		last = `"-1294967296\n"` // 32-bit overflow
	}
	return fmt.Sprintf("# check %s\n# judge0test: \"1 2\\n\" -> \"3\\n\"\n# judge0test: \"-5 5\\n\" -> \"0\\n\"\n"+
		"# judge0test: \"1000000000 2000000000\\n\" -> %s\nprint(sum(map(int, input().split())))\n", tag, last)
}

// checksConfig is the code-checks family as every instance of a test
// declares it: a short checker ack wait, so that a killed checker's
// request comes back soon.
func checksConfig(ackWait time.Duration) streams.CheckStreamConfig {
	return streams.CheckStreamConfig{CheckerAckWait: ackWait}
}

// applyChecks applies cfg over the stack's defaults.
func applyChecks(t *testing.T, s *apptest.Stack, cfg streams.CheckStreamConfig) {
	t.Helper()
	if _, err := streams.Apply(t.Context(), s.JS, true, streams.Checks(cfg)); err != nil {
		t.Fatal(err)
	}
}

// clientConfig is a checker client of the fake, quick to retry and to
// open its breaker.
func clientConfig(url string) checker.Config {
	return checker.Config{
		URL: url, Timeout: 2 * time.Second, CheckTimeout: 30 * time.Second, PollInterval: 20 * time.Millisecond,
		RatePerSecond: 2000, MaxConcurrent: 16,
		Retry:   retry.Policy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Breaker: checker.BreakerConfig{Failures: 5, OpenFor: time.Second},
	}
}

// startAll runs an API, a worker and (with url) a checker in this process.
func startAll(t *testing.T, s *apptest.Stack, cc streams.CheckStreamConfig, url string, runner worker.CheckerConfig) *apptest.Instance {
	t.Helper()
	cfg := s.Config(t)
	cfg.API, cfg.Workers, cfg.Checks = true, 1, cc
	cfg.APIConfig.AttemptRate, cfg.APIConfig.MaxUnsettledPerStudent = -1, -1
	// Signups of many students at once on a loaded machine: they wait for
	// a password hash rather than answer 503.
	cfg.APIConfig.HashWait = time.Minute
	if url != "" || runner.Deadline != 0 {
		cfg.Checker = app.CheckerConfig{Run: true, Runner: runner}
		if url != "" {
			cfg.Checker.Client = clientConfig(url)
		}
	}
	return s.Start(t, cfg)
}

// streamCounts returns, per check id, how many events of kind the CHECKS
// stream holds.
func streamCounts(t *testing.T, s *apptest.Stack, kind string) map[uuid.UUID]int {
	t.Helper()
	st, err := s.JS.Stream(t.Context(), streams.DefaultCheckStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(events.CheckSubjectPrefix+".*.*."+kind))
	if err != nil {
		t.Fatal(err)
	}
	out := map[uuid.UUID]int{}
	for subj, n := range info.State.Subjects {
		parts := strings.Split(subj, ".")
		id, err := uuid.Parse(parts[3])
		if err != nil {
			t.Fatalf("subject %s", subj)
		}
		out[id] += int(n)
	}
	return out
}

// streamMsgs returns how many messages the CHECKS stream holds.
func streamMsgs(t *testing.T, s *apptest.Stack) uint64 {
	t.Helper()
	st, err := s.JS.Stream(t.Context(), streams.DefaultCheckStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// statuses returns each stored check's status.
func statuses(t *testing.T, s *apptest.Stack) map[uuid.UUID]string {
	t.Helper()
	rows, err := s.DB.Query(t.Context(), `SELECT id, status FROM checks`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]string{}
	for rows.Next() {
		var id uuid.UUID
		var st string
		if err := rows.Scan(&id, &st); err != nil {
			t.Fatal(err)
		}
		out[id] = st
	}
	return out
}

// waitFinal waits until n checks are stored with a final status.
func waitFinal(t *testing.T, s *apptest.Stack, n int, timeout time.Duration) {
	t.Helper()
	apptest.WaitFor(t, timeout, fmt.Sprintf("%d checks to be final", n), func() bool {
		var got int
		err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM checks WHERE status IN ('passed', 'failed', 'error')`).Scan(&got)
		return err == nil && got >= n
	})
}

func checksQuery(exercise string) client.ChecksQuery { return client.ChecksQuery{ExerciseID: exercise} }
