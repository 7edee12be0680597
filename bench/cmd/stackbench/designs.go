package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// tiers are a design's processes whose CPU time is sampled.
type tiers struct {
	db   string         // the design's database, for its backends' CPU
	pids map[string]int // by tier name
	rss  []string       // tiers whose peak RSS is reported
	disk string         // a path on the disk whose activity is sampled
	// metrics is the API's /metrics, for its publisher's batching; "" when
	// the design has none.
	metrics string
}

// sample is the CPU seconds of every tier at one time, and of each
// backend of the design's database.
type sample struct {
	tiers    map[string]float64
	backends map[int]float64
	disk     diskStat
	at       time.Time
}

func (t tiers) sample() sample {
	m := map[string]float64{}
	for name, pid := range t.pids {
		m[name] = cpuOf(pid)
	}
	var backends map[int]float64
	m[tierPostgres], backends = postgresCPU(t.db)
	m[tierLoad] = cpuOf(os.Getpid())
	m[tierMachine], m[tierIRQ], m[tierSteal], _ = machineCPU()
	return sample{tiers: m, backends: backends, disk: diskOf(t.disk), at: time.Now()}
}

// cpuBetween returns each tier's CPU seconds from before to after. The
// database's backends count per process: one that exited meanwhile took
// its time along (undercounted), one that started counts from zero.
func cpuBetween(before, after sample) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after.tiers {
		out[k] = v - before.tiers[k]
	}
	for pid, v := range after.backends {
		out[tierPostgresDB] += v - before.backends[pid]
	}
	other := out[tierMachine]
	for _, k := range []string{tierAPI, tierWorker, tierChecker, tierNATS, tierPostgres, tierLoad} {
		other -= out[k]
	}
	out[tierOther] = max(other, 0)
	return out
}

// Tier names of the results.
const (
	tierAPI        = "api"
	tierWorker     = "worker"
	tierNATS       = "nats-server"
	tierPostgres   = "postgres"
	tierPostgresDB = "postgres-db"
	tierLoad       = "load"
	tierChecker    = "checker" // the checker role (the checker-outage phase)
	tierMachine    = "machine" // every CPU's time running programs
	tierIRQ        = "irq"     // every CPU's time in interrupts
	tierSteal      = "steal"   // time the hypervisor gave to others
	// tierOther is the machine's time running programs other than the
	// stack, PostgreSQL (all of it) and the load generator.
	tierOther = "other"
)

// design is one of the two stacks under test.
type design struct {
	name   string
	url    string
	dbURL  string
	tiers  tiers
	procs  []*proc
	result designResult
	// the open model's search
	passed, failed float64
	done           bool
}

// stop stops the design's processes (once), noting unclean exits.
func (d *design) stop() {
	for _, p := range d.procs {
		if err := p.stop(); err != nil {
			d.result.Notes = append(d.result.Notes, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	d.procs = nil
}

// startQuizstream starts the real stack: api and worker processes.
func (b *bench) startQuizstream(ctx context.Context, db, dbURL string) (*design, error) {
	return b.startQuizstreamOn(ctx, b.nats, b.tmp, db, dbURL)
}

// startQuizstreamOn starts api and worker processes on the server ns,
// their logs in dir.
func (b *bench) startQuizstreamOn(ctx context.Context, ns *natsServer, dir, db, dbURL string) (*design, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	apiOps, _ := freeAddr()
	workerOps, _ := freeAddr()
	// The per-student attempt limiter is off, as in the baseline:
	// closed-loop students submit far above a person's pace.
	env := []string{"DATABASE_URL=" + dbURL, "NATS_URL=" + ns.url, "LOG_LEVEL=warn", "ATTEMPT_RATE=-1"}
	b.say("starting quizstream api and quizstream worker")
	d := &design{name: "quizstream", url: "http://" + listen, dbURL: dbURL}
	d.result = designResult{Name: d.name, Description: "quizstream api (its default publisher: concurrent attempts coalesced into atomic batches when the stream allows them) + quizstream worker (its default of 2 batch writers) processes; NATS JetStream R1 file stream, sync_interval: always; the 202 follows the stream's PubAck"}
	api, err := start(dir, "api", b.bins["quizstream"], append(env, "LISTEN_ADDR="+listen, "METRICS_ADDR="+apiOps), "api")
	if err != nil {
		return nil, err
	}
	d.procs = append(d.procs, api)
	if err := waitReady(ctx, api, d.url+"/readyz"); err != nil {
		return d, err
	}
	worker, err := start(dir, "worker", b.bins["quizstream"], append(env, "METRICS_ADDR="+workerOps), "worker")
	if err != nil {
		return d, err
	}
	d.procs = append(d.procs, worker)
	if err := waitReady(ctx, worker, "http://"+workerOps+"/readyz"); err != nil {
		return d, err
	}
	d.tiers = tiers{db: db, pids: map[string]int{tierAPI: api.pid(), tierWorker: worker.pid(), tierNATS: ns.pid()},
		rss: []string{tierAPI, tierWorker}, disk: dir, metrics: "http://" + apiOps + "/metrics"}
	return d, nil
}

// startBaseline starts the same API writing each attempt synchronously.
func (b *bench) startBaseline(ctx context.Context, db, dbURL string) (*design, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	b.say("starting the baseline")
	d := &design{name: "baseline", url: "http://" + listen, dbURL: dbURL}
	d.result = designResult{Name: d.name, Description: "the same api.Server (auth, grading, encoding, pool) writing each attempt with a synchronous single-row store.InsertAttempts (attempt + progress, one transaction) before the 202; no worker"}
	p, err := start(b.tmp, "baseline", b.bins["baseline"], []string{"DATABASE_URL=" + dbURL}, "-listen-addr", listen)
	if err != nil {
		return nil, err
	}
	d.procs = append(d.procs, p)
	if err := waitReady(ctx, p, d.url+"/readyz"); err != nil {
		return d, err
	}
	d.tiers = tiers{db: db, pids: map[string]int{tierAPI: p.pid(), tierNATS: b.nats.pid()}, rss: []string{tierAPI}, disk: b.tmp}
	return d, nil
}
