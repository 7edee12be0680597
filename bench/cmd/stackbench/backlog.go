package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
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

// publishBacklog publishes the n events through a Batcher from many
// concurrent callers, as the API does, with no worker running.
func (b *bench) publishBacklog(ctx context.Context, ns *natsServer, gen backlogEvents, res *backlogResult) error {
	n := res.Attempts
	nc, err := nats.Connect(ns.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	lg, err := events.OpenLog(ctx, js, events.StreamConfig{})
	if err != nil {
		return err
	}
	cfg := events.BatchConfig{MaxMessages: 1000, MaxInflight: 4}
	bt, err := events.NewBatcher(ctx, lg, cfg)
	if err != nil {
		return err
	}
	defer bt.Close()
	res.Publishers, res.PublishBatch, res.PublishAtomic = backlogPublishers, cfg.MaxMessages, bt.Batching()
	b.say("backlog: publishing %d attempts from %d concurrent callers (atomic batches of up to %d: %v)", n, backlogPublishers, cfg.MaxMessages, res.PublishAtomic)

	var next, done, retries atomic.Int64
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := time.Now()
	for range backlogPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ev := gen.event(i, time.Now())
				for try := 0; ; try++ {
					_, err := bt.PublishAttempt(pctx, ev)
					if err == nil {
						break
					}
					if try == 10 || pctx.Err() != nil {
						cancel(fmt.Errorf("publish attempt %d: %w", i, err))
						return
					}
					retries.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
				done.Add(1)
			}
		}()
	}
	stopProgress := b.every(5*time.Second, func() {
		b.say("backlog: published %d of %d (%.0f/s)", done.Load(), n, float64(done.Load())/time.Since(start).Seconds())
	})
	wg.Wait()
	stopProgress()
	res.PublishSeconds = time.Since(start).Seconds()
	res.PublishRetries = retries.Load()
	if err := context.Cause(pctx); err != nil {
		return err
	}
	info, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		return err
	}
	if got := info.CachedInfo().State.Msgs; got != uint64(n) { //nolint:gosec // G115: n is the backlog, above 0
		return fmt.Errorf("the stream holds %d events after %d publishes", got, n)
	}
	res.StreamBytes = info.CachedInfo().State.Bytes
	b.say("backlog: published %d attempts in %.1fs (%.0f/s), stream %.0f MiB", n, res.PublishSeconds,
		float64(n)/res.PublishSeconds, float64(res.StreamBytes)/(1<<20))
	return nil
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

// countFrom is how far below the backlog the table's insert counter must
// be for the drain to start counting the table's rows: above what the
// counter can lag.
const countFrom = 20000

// Worker metrics the drain reads, once, at its end.
const (
	metricBatchCount = "quizstream_worker_batch_messages_count"
	metricBatchSum   = "quizstream_worker_batch_messages_sum"
	metricBatchSecs  = "quizstream_worker_batch_duration_seconds_sum"
)

// drainBacklog starts a `quizstream worker` as the stack runs it and times
// it from its start until the attempts table holds every attempt. A
// worker that has stored nothing after stallAfter is stopped, and one with
// BATCH_MAX_WAIT=stallMaxWait is timed instead, the stall reported.
func (b *bench) drainBacklog(ctx context.Context, ns *natsServer, db, dbURL string, env []string, res *backlogResult) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// Both the drain and the reference start from a clean checkpoint.
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	extra := b.o.BacklogWorkerEnv
	res.WorkerEnv = strings.Join(extra, " ")
	stalled, err := b.drainOnce(ctx, conn, ns, db, env, extra, false, res)
	if err != nil || !stalled {
		return err
	}
	res.StalledSeconds = stallAfter.Seconds()
	extra = append(slices.Clip(extra), "BATCH_MAX_WAIT="+stallMaxWait.String())
	res.WorkerEnv = strings.Join(extra, " ")
	b.say("backlog: the worker stored nothing in %s; timing one with %s instead", stallAfter, res.WorkerEnv)
	_, err = b.drainOnce(ctx, conn, ns, db, env, extra, true, res)
	return err
}

// A worker that stores nothing for stallAfter after its start is stalled.
// Workers did so while their consumer had a wildcard filter (events'
// consumerConfig has none since): the server's lookup of a consumer's
// first message went over every subject of the stream, and a lookup
// longer than the fetch's wait (BATCH_MAX_WAIT) was redone for the next
// fetch, for ever. A stall now is a regression, reported as such.
const (
	stallAfter   = 60 * time.Second
	stallMaxWait = 2 * time.Second
)

// drainOnce runs one worker (with extra settings) until the backlog is
// stored, or, unless again, until it has stored nothing after stallAfter
// (it then reports stalled).
func (b *bench) drainOnce(ctx context.Context, conn *pgx.Conn, ns *natsServer, db string, env, extra []string, again bool, res *backlogResult) (stalled bool, err error) {
	n := res.Attempts
	count := func() (int64, error) {
		var c int64
		err := conn.QueryRow(ctx, "SELECT count(*) FROM attempts").Scan(&c)
		return c, err
	}
	// The table's insert counter (flushed by the worker's backend about
	// once a second) is cheap and says when to start counting the table's
	// rows, which is not. The worker's /metrics is no gauge here: each
	// scrape has the server compute the stream's and the consumer's info,
	// which over a million subjects took over a second.
	inserted := func() int64 {
		var c int64
		_ = conn.QueryRow(ctx, "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname = 'attempts'").Scan(&c)
		return c
	}
	ops, err := freeAddr()
	if err != nil {
		return false, err
	}
	metrics := "http://" + ops + "/metrics"
	resetPeakRSS(ns.pid())
	b.say("backlog: starting quizstream worker (defaults: batch %d, max wait %s, %d batch writers; settings: %v)", worker.DefaultBatchSize, worker.DefaultMaxWait, worker.DefaultWriters, extra)
	began := time.Now()
	name := "backlog-worker"
	if again {
		name += "-again"
	}
	w, err := start(b.tmp, name, b.bins["quizstream"], append(append(env, "METRICS_ADDR="+ops, "PPROF=true"), extra...), "worker")
	if err != nil {
		return false, err
	}
	defer w.stop()
	t := tiers{db: db, pids: map[string]int{tierWorker: w.pid(), tierNATS: ns.pid()}, disk: b.tmp}
	before := t.sample()
	_, _, _, res.DrainLoadAvg[0] = machineCPU()
	if err := waitReady(ctx, w, "http://"+ops+"/readyz"); err != nil {
		return false, err
	}
	res.WorkerReadySeconds = time.Since(began).Seconds()

	// A CPU profile of the worker while it drains, kept with -keep.
	var prof sync.WaitGroup
	defer prof.Wait()
	if n >= 100000 {
		path := filepath.Join(b.tmp, name+".cpu.pprof")
		prof.Add(1)
		go func() {
			defer prof.Done()
			time.Sleep(5 * time.Second)
			if err := fetchTo(ctx, "http://"+ops+"/debug/pprof/profile?seconds=15", path); err == nil {
				res.WorkerProfile = path
			}
		}()
	}

	deadline := began.Add(max(30*time.Minute, time.Duration(n/200)*time.Second))
	lastCount := time.Now()
	var seen atomic.Int64
	stopProgress := b.every(5*time.Second, func() {
		s := seen.Load()
		b.say("backlog: worker inserted about %d of %d (%.0f/s since its start)", s, n, float64(s)/time.Since(began).Seconds())
	})
	defer stopProgress()
	for {
		ins := inserted()
		seen.Store(ins)
		if ins >= int64(n)-countFrom || time.Since(lastCount) > 15*time.Second {
			c, err := count()
			if err != nil {
				return false, err
			}
			lastCount = time.Now()
			if c >= int64(n) {
				break
			}
			if c == 0 && !again && time.Since(began) > stallAfter {
				return true, nil
			}
		}
		if w.exited() {
			return false, fmt.Errorf("the worker exited: %v\n%s", w.err, w.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, fmt.Errorf("the worker had not stored %d attempts after %s", n, time.Since(began).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
	end := time.Now()
	after := t.sample()
	_, _, _, res.DrainLoadAvg[1] = machineCPU()
	res.DrainSeconds = end.Sub(began).Seconds()
	res.DrainCPU = cpuBetween(before, after)
	res.DrainDisk = diskBetween(before.disk, after.disk, after.at.Sub(before.at))
	m := scrape(metrics, metricBatchCount, metricBatchSum, metricBatchSecs)
	if res.WorkerBatches = m[metricBatchCount]; res.WorkerBatches > 0 {
		res.WorkerMeanBatch = m[metricBatchSum] / res.WorkerBatches
		res.WorkerMeanBatchMs = m[metricBatchSecs] * 1000 / res.WorkerBatches
	}
	b.say("backlog: the worker stored %d attempts in %.1fs from its start (%.0f/s; %.0f batches of %.0f, %.1f ms each)",
		n, res.DrainSeconds, float64(n)/res.DrainSeconds, res.WorkerBatches, res.WorkerMeanBatch, res.WorkerMeanBatchMs)
	prof.Wait()
	res.WorkerPeakRSSKiB, res.NATSPeakRSSKiB = peakRSS(w.pid()), peakRSS(ns.pid())
	if nc, err := nats.Connect(ns.url); err == nil {
		if js, err := jetstream.New(nc); err == nil {
			if c, err := js.Consumer(ctx, events.DefaultStreamName, events.DefaultConsumer); err == nil {
				res.WorkerRedelivered = c.CachedInfo().NumRedelivered
			}
		}
		nc.Close()
	}
	if err := w.stop(); err != nil {
		return false, err
	}
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM attempts), (SELECT count(*) FROM progress)").Scan(&res.Stored, &res.ProgressRows); err != nil {
		return false, err
	}
	if res.Stored != int64(n) {
		return false, fmt.Errorf("the attempts table holds %d rows, not %d", res.Stored, n)
	}
	return false, nil
}

// fetchTo saves the body of a GET to path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// referenceBacklog reads back the rows the worker stored and writes them
// with store.InsertAttempts (the worker's own statements: COPY into the
// per-connection staging table, INSERT ... ON CONFLICT into attempts and
// the progress upsert from the inserted rows) into the empty tables of a
// freshly migrated database on the same server: once as one transaction
// of every row, then again (tables emptied) in transactions of the
// worker's batch size.
func (b *bench) referenceBacklog(ctx context.Context, dbURL, refDB, refURL string, res *backlogResult) error {
	n := res.Attempts
	b.say("backlog: reading back the %d stored attempts", n)
	rows, err := readAttempts(ctx, dbURL)
	if err != nil {
		return err
	}
	if len(rows) != n {
		return fmt.Errorf("read back %d attempts, not %d", len(rows), n)
	}
	st, err := store.Open(ctx, store.Config{URL: refURL, MaxConns: 2})
	if err != nil {
		return err
	}
	defer st.Close()
	for _, chunk := range []int{0, worker.DefaultBatchSize} {
		run := referenceRun{What: "one COPY into the staging table + one INSERT ... ON CONFLICT (+ progress upsert), one transaction", Chunk: n, Rows: n}
		if chunk > 0 {
			run.What = fmt.Sprintf("the same, in transactions of %d rows (the worker's batch size), one after the other", chunk)
			run.Chunk = chunk
		}
		if _, err := st.Pool().Exec(ctx, "TRUNCATE attempts, progress"); err != nil {
			return err
		}
		if _, err := st.Pool().Exec(ctx, "CHECKPOINT"); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		b.say("backlog: reference: %d rows, %d per transaction", n, run.Chunk)
		t := tiers{db: refDB, pids: map[string]int{}, disk: b.tmp}
		before := t.sample()
		start := time.Now()
		for _, c := range chunks(n, chunk) {
			r, err := st.InsertAttempts(ctx, rows[c[0]:c[1]])
			if err != nil {
				run.Error = err.Error()
				break
			}
			run.Inserted += r.Inserted
			run.ProgressRows += r.ProgressRows
		}
		run.Seconds = time.Since(start).Seconds()
		run.CPU = cpuBetween(before, t.sample())
		if run.Error == "" && run.Inserted != int64(n) {
			run.Error = fmt.Sprintf("inserted %d rows, not %d", run.Inserted, n)
		}
		b.say("backlog: reference: %d rows in %.1fs (%.0f/s) %s", run.Inserted, run.Seconds, float64(run.Inserted)/run.Seconds, run.Error)
		res.Reference = append(res.Reference, run)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// readAttempts returns every attempt of a database in stream order, as
// the worker wrote them.
func readAttempts(ctx context.Context, dbURL string) ([]store.Attempt, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT id, student_id, quiz_id, course_id, coalesce(idempotency_key, ''), answers,
		answers_hash, score, max_score, status, submitted_at, stream_seq FROM attempts ORDER BY stream_seq`)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Attempt, error) {
		var a store.Attempt
		var seq int64
		err := row.Scan(&a.ID, &a.StudentID, &a.QuizID, &a.CourseID, &a.IdempotencyKey, &a.Answers,
			&a.AnswersHash, &a.Score, &a.MaxScore, &a.Status, &a.SubmittedAt, &seq)
		a.StreamSeq = uint64(seq)
		return a, err
	})
}
