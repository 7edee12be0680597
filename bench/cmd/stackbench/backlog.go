package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

// The backlog phase measures issue 8's target: a backlog of attempts is
// stored at at least backlogTarget of the rate of COPY into a staging table
// plus INSERT ... ON CONFLICT on the same table.
const (
	backlogTarget     = 0.6
	backlogStudents   = 500
	backlogPublishers = 3000
	// onlyBacklog is the -only value that runs the backlog phase alone.
	onlyBacklog = "backlog"
)

// backlogResult is what the backlog phase found.
type backlogResult struct {
	Attempts int `json:"attempts"`
	Students int `json:"students"`
	Quizzes  int `json:"quizzes"`
	// Publishing, with no worker running.
	Publishers     int     `json:"publishers"`
	PublishBatch   int     `json:"publish_batch_max"`
	PublishAtomic  bool    `json:"publish_atomic_batches"`
	PublishSeconds float64 `json:"publish_s"`
	PublishPerS    float64 `json:"publish_per_s"`
	PublishRetries int64   `json:"publish_retries"`
	StreamBytes    uint64  `json:"stream_bytes"`
	// The worker draining the backlog: from its process's start until
	// PostgreSQL holds every attempt.
	WorkerReadySeconds float64            `json:"worker_ready_s"`
	DrainSeconds       float64            `json:"drain_s"`
	DrainPerS          float64            `json:"drain_per_s"`
	Stored             int64              `json:"stored_rows"`
	ProgressRows       int64              `json:"progress_rows"`
	DrainCPU           map[string]float64 `json:"drain_cpu_s,omitempty"`
	DrainLoadAvg       [2]string          `json:"drain_loadavg"`
	DrainDisk          *diskActivity      `json:"drain_disk,omitempty"`
	WorkerPeakRSSKiB   int64              `json:"worker_peak_rss_kib"`
	NATSPeakRSSKiB     int64              `json:"nats_server_peak_rss_kib"`
	// From the worker's own metrics over the drain.
	WorkerBatches     float64 `json:"worker_batches"`
	WorkerMeanBatch   float64 `json:"worker_mean_batch"`
	WorkerMeanBatchMs float64 `json:"worker_mean_batch_ms"`
	WorkerRedelivered int     `json:"redelivered"`
	WorkerProfile     string  `json:"worker_cpu_profile,omitempty"`
	// StalledSeconds, when not 0, is how long a worker with its defaults
	// ran without storing anything before it was stopped; the drain's
	// figures are then of a worker with WorkerEnv.
	StalledSeconds float64 `json:"stalled_with_defaults_s,omitempty"`
	WorkerEnv      string  `json:"worker_env,omitempty"`
	// Reference is the same rows written straight into an empty copy of
	// the tables with the worker's statements: in one COPY and one INSERT
	// (one transaction), and in transactions of the worker's batch size.
	Reference []referenceRun `json:"reference"`
	// Ratio is DrainPerS over the rate of the reference run Best: the
	// faster of them, so that the target is held against the best rate
	// PostgreSQL showed for the same work. Met says whether it reaches
	// Target.
	Best   int     `json:"reference_used"`
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target"`
	Met    bool    `json:"target_met"`
	Error  string  `json:"error,omitempty"`
}

// referenceRun is one timed direct write of the backlog's rows.
type referenceRun struct {
	What         string             `json:"what"`
	Chunk        int                `json:"rows_per_transaction"`
	Rows         int                `json:"rows"`
	Seconds      float64            `json:"seconds"`
	PerS         float64            `json:"per_s"`
	Inserted     int64              `json:"inserted"`
	ProgressRows int64              `json:"progress_rows"`
	CPU          map[string]float64 `json:"cpu_s,omitempty"`
	Error        string             `json:"error,omitempty"`
}

// finish fills the rates, the ratio and the verdict.
func (r *backlogResult) finish() {
	r.Target = backlogTarget
	r.PublishPerS = perSecond(r.Attempts, r.PublishSeconds)
	r.DrainPerS = perSecond(r.Attempts, r.DrainSeconds)
	for i := range r.Reference {
		r.Reference[i].PerS = perSecond(r.Reference[i].Rows, r.Reference[i].Seconds)
	}
	r.Best, r.Ratio, r.Met = -1, 0, false
	for i, ref := range r.Reference {
		if ref.Error == "" && ref.PerS > 0 && (r.Best < 0 || ref.PerS > r.Reference[r.Best].PerS) {
			r.Best = i
		}
	}
	if r.Best >= 0 && r.DrainPerS > 0 {
		r.Ratio = r.DrainPerS / r.Reference[r.Best].PerS
		r.Met = r.Ratio >= r.Target
	}
}

func perSecond(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}

// chunks splits n rows into transactions of at most size rows (size <= 0:
// one), returning each one's [from, to).
func chunks(n, size int) [][2]int {
	if size <= 0 || size > n {
		size = n
	}
	var out [][2]int
	for from := 0; from < n; from += size {
		out = append(out, [2]int{from, min(from+size, n)})
	}
	return out
}

// backlogEvents builds the backlog's events: event i is by one of the
// students and of one of the (untimed) quizzes, answers every question of
// it with a choice picked at random from a seed of i, and is graded and
// hashed as the API grades and hashes; its Idempotency-Key names the run
// and i, so every attempt id is distinct.
type backlogEvents struct {
	run      string
	students []uuid.UUID
	quizzes  []store.Quiz
}

func (g backlogEvents) event(i int, at time.Time) events.AttemptSubmitted {
	student := g.students[i%len(g.students)]
	quiz := g.quizzes[(i/len(g.students))%len(g.quizzes)]
	rng := rand.New(rand.NewPCG(uint64(i), 0x9e3779b97f4a7c15)) //nolint:gosec // G115: i counts up from 0
	answers := make([]events.Answer, len(quiz.Questions))
	score := 0
	for q, question := range quiz.Questions {
		c := question.Choices[rng.IntN(len(question.Choices))]
		if c.Correct {
			score++
		}
		answers[q] = events.Answer{QuestionID: question.ID.String(), ChoiceID: c.ID.String()}
	}
	key := g.run + "-" + strconv.Itoa(i)
	return events.AttemptSubmitted{
		AttemptID: events.AttemptID(student, key), StudentID: student, QuizID: quiz.ID, CourseID: quiz.CourseID,
		IdempotencyKey: key, Answers: answers, AnswersHash: events.HashAnswers(quiz.ID, answers),
		Score: score, MaxScore: len(quiz.Questions), SubmittedAt: at.UTC().Truncate(time.Microsecond),
	}
}

// untimedQuizzes returns the quizzes an attempt POST accepts: not timed,
// with questions that have choices.
func untimedQuizzes(courses []store.Course) []store.Quiz {
	var out []store.Quiz
	for _, c := range courses {
	next:
		for _, q := range c.Quizzes {
			if q.TimeLimit != 0 || len(q.Questions) == 0 {
				continue
			}
			for _, question := range q.Questions {
				if len(question.Choices) == 0 {
					continue next
				}
			}
			out = append(out, q)
		}
	}
	return out
}

// backlog runs the backlog phase of n attempts with databases named after
// prefix, on a NATS server of its own; it returns what it measured, with
// the error that stopped it, if any, in its Error.
func (b *bench) backlog(ctx context.Context, prefix string, n int) *backlogResult {
	res := &backlogResult{Attempts: n, Target: backlogTarget}
	if err := b.runBacklog(ctx, prefix, res); err != nil {
		res.Error = err.Error()
		b.say("backlog: %v", err)
	}
	res.finish()
	return res
}

func (b *bench) runBacklog(ctx context.Context, prefix string, res *backlogResult) error {
	dir := filepath.Join(b.tmp, "backlog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// A server of its own: the phase starts from an empty stream whatever
	// ran before it.
	b.say("backlog: starting a nats-server of its own (JetStream, sync_interval: always)")
	ns, err := startNATS(ctx, b.bins["nats-server"], dir)
	if err != nil {
		return err
	}
	defer ns.stop()
	v, err := ns.varz()
	if err != nil {
		return fmt.Errorf("nats-server /varz: %w", err)
	}
	if !v.JetStream.Config.SyncAlways {
		return errors.New("nats-server does not sync every write: the phase would not be at full durability")
	}
	if b.rep.Versions.NATSServer == "" {
		b.rep.Versions.NATSServer, b.rep.Versions.NATSSyncAlways = v.Version, v.JetStream.Config.SyncAlways
	}

	db, refDB := prefix+"_backlog", prefix+"_backlogref"
	dbURL, err := b.pg.create(ctx, db)
	if err != nil {
		return err
	}
	defer b.dropLater(ctx, db)
	b.say("backlog: database %s: migrate, stream apply, seed", db)
	env := []string{"DATABASE_URL=" + dbURL, "LOG_LEVEL=warn", "NATS_URL=" + ns.url}
	if err := runTool(ctx, b.bins["quizstream"], env, "migrate"); err != nil {
		return err
	}
	if hasCommand(ctx, b.bins["quizstream"], "stream") {
		if err := runTool(ctx, b.bins["quizstream"], env, "stream", "apply"); err != nil {
			return err
		}
	}
	if err := runTool(ctx, b.bins["quizstream"], env, "seed"); err != nil {
		return err
	}

	gen, err := b.backlogContent(ctx, dbURL, res)
	if err != nil {
		return err
	}
	if err := b.publishBacklog(ctx, ns, gen, res); err != nil {
		return err
	}
	if err := b.drainBacklog(ctx, ns, db, dbURL, env, res); err != nil {
		return err
	}

	refURL, err := b.pg.create(ctx, refDB)
	if err != nil {
		return err
	}
	defer b.dropLater(ctx, refDB)
	if err := runTool(ctx, b.bins["quizstream"], []string{"DATABASE_URL=" + refURL, "LOG_LEVEL=warn"}, "migrate"); err != nil {
		return err
	}
	return b.referenceBacklog(ctx, dbURL, refDB, refURL, res)
}

func (b *bench) dropLater(ctx context.Context, name string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := b.pg.drop(dctx, name); err != nil {
		b.say("drop database %s: %v", name, err)
	}
}

// backlogContent creates the students and loads the seeded quizzes.
func (b *bench) backlogContent(ctx context.Context, dbURL string, res *backlogResult) (backlogEvents, error) {
	st, err := store.Open(ctx, store.Config{URL: dbURL, MaxConns: 4})
	if err != nil {
		return backlogEvents{}, err
	}
	defer st.Close()
	courses, err := st.LoadContent(ctx)
	if err != nil {
		return backlogEvents{}, err
	}
	gen := backlogEvents{run: "backlog-" + strconv.FormatInt(time.Now().UnixNano(), 36), quizzes: untimedQuizzes(courses)}
	if len(gen.quizzes) == 0 {
		return gen, errors.New("the seeded content has no untimed quiz")
	}
	b.say("backlog: creating %d students", backlogStudents)
	now := time.Now().UTC()
	for i := range backlogStudents {
		id := uuid.New()
		// They never log in: the hash only has to be there.
		err := st.CreateStudent(ctx, store.NewStudent{Student: store.Student{
			ID: id, Email: fmt.Sprintf("%s-%d@backlog.invalid", gen.run, i), Name: fmt.Sprintf("Backlog student %d", i), CreatedAt: now,
		}, PasswordHash: "stackbench backlog: no login"})
		if err != nil {
			return gen, err
		}
		gen.students = append(gen.students, id)
	}
	res.Students, res.Quizzes = len(gen.students), len(gen.quizzes)
	return gen, nil
}

// every calls f every d until the returned function is called.
func (b *bench) every(d time.Duration, f func()) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}
