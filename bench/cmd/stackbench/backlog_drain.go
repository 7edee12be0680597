package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

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
			if c, err := js.Consumer(ctx, streams.DefaultStreamName, streams.DefaultConsumer); err == nil {
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
