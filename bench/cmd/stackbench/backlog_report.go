package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// writeBacklog renders the backlog phase.
func writeBacklog(b *strings.Builder, r *backlogResult, cpus int) {
	if r == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Backlog of %d attempts\n\n", r.Attempts)
	p("Issue 8's target: a backlog of attempts is stored at at least %.0f%% of the rate of COPY into a staging table plus INSERT ... ON CONFLICT on the same table. ", r.Target*100)
	p("A database of its own (migrated, seeded, `quizstream stream apply`) and a nats-server of its own (JetStream, `sync_interval: always`); %d students created in it; with no worker running, %d valid AttemptSubmitted events (one per distinct attempt id, each of a real student and one of the %d untimed seeded quizzes, every question answered, graded and hashed as the API does) are published through eventlog.Batcher (atomic batches of up to %d: %v) by %d concurrent callers. ",
		r.Students, r.Attempts, r.Quizzes, r.PublishBatch, r.PublishAtomic, r.Publishers)
	p("Then one `quizstream worker` process starts with its defaults (plus the settings the drain's row names, if any) and is timed from its start until the attempts table holds all %d. ", r.Attempts)
	p("The reference reads those rows back and writes them, on the same server, into the empty attempts and progress tables of a freshly migrated database with store.InsertAttempts, the worker's own statements: COPY into the per-connection staging table, INSERT ... ON CONFLICT into attempts and the progress upsert of the inserted rows. It does so twice, the tables emptied between: one COPY and one INSERT of every row in one transaction, and the same in transactions of the worker's batch size one after the other; the target is held against the faster of the two. A CHECKPOINT precedes the drain and each reference.\n\n")
	if r.Error != "" {
		p("Error: %s\n\n", r.Error)
	}
	verdict := "not met"
	if r.Met {
		verdict = "met"
	}
	p("| | attempts/s | time | |\n|---|---:|---:|---|\n")
	p("| publish, no worker running | %.0f | %.1f s | %d retries; stream %.0f MiB |\n", r.PublishPerS, r.PublishSeconds, r.PublishRetries, float64(r.StreamBytes)/(1<<20))
	worker := "worker drains the backlog"
	if r.WorkerEnv != "" {
		worker += " (" + r.WorkerEnv + ")"
	}
	p("| **%s** | **%.0f** | %.1f s | from the process's start (ready after %.2f s); %.0f batches of %.1f on average, %.1f ms each; %d redelivered |\n",
		worker, r.DrainPerS, r.DrainSeconds, r.WorkerReadySeconds, r.WorkerBatches, r.WorkerMeanBatch, r.WorkerMeanBatchMs, r.WorkerRedelivered)
	for i, ref := range r.Reference {
		name, rate := "reference: "+ref.What, fmt.Sprintf("%.0f", ref.PerS)
		if i == r.Best {
			name, rate = "**"+name+"**", "**"+rate+"**"
		}
		note := fmt.Sprintf("%d rows inserted, %d progress rows written", ref.Inserted, ref.ProgressRows)
		if ref.Error != "" {
			note = "error: " + ref.Error
		}
		if ref.PerS > 0 && r.DrainPerS > 0 {
			note = fmt.Sprintf("worker / this: %.2f; ", r.DrainPerS/ref.PerS) + note
		}
		p("| %s | %s | %.1f s | %s |\n", name, rate, ref.Seconds, note)
	}
	p("\nWorker / the faster reference: **%.2f** (target %.2f): **%s**. Progress rows after the drain: %d.\n\n", r.Ratio, r.Target, verdict, r.ProgressRows)
	if r.StalledSeconds > 0 {
		p("**The worker stored nothing** in %.0f s (its defaults, plus -backlog-worker-env settings if any) and was stopped: the server's lookup of the consumer's first message (a wildcard filter, matched against every subject of the stream, one per attempt) took longer than the worker's fetch wait (BATCH_MAX_WAIT), so each fetch expired before it and the next one started it over. The drain's figures are of a worker started again with %s.\n\n", r.StalledSeconds, r.WorkerEnv)
	}
	p("| window | worker | nats-server | postgres (all) | postgres (bench db backends) | stackbench | other programs | machine: programs | load avg | disk writes/s, flushes/s, busy | CPU µs / attempt | worker peak RSS | nats-server peak RSS |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n")
	perAttempt := func(cpu float64) float64 { return cpu * 1e6 / float64(max(r.Attempts, 1)) }
	share := func(c map[string]float64, secs float64) string {
		if secs <= 0 || cpus <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", c[tierOther]/(secs*float64(cpus))*100)
	}
	var shares []string
	if c := r.DrainCPU; c != nil {
		disk := "-"
		if k := r.DrainDisk; k != nil {
			disk = fmt.Sprintf("%.0f, %.0f, %.0f%%", k.WritesPerS, k.FlushesPerS, k.BusyPct)
		}
		p("| drain | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s -> %s | %s | %.0f | %s | %s |\n", c[tierWorker], c[tierNATS], c[tierPostgres], c[tierPostgresDB],
			c[tierLoad], c[tierOther], c[tierMachine], firstOf(r.DrainLoadAvg[0]), firstOf(r.DrainLoadAvg[1]), disk,
			perAttempt(c[tierWorker]+c[tierNATS]+c[tierPostgresDB]), mib(r.WorkerPeakRSSKiB), mib(r.NATSPeakRSSKiB))
		shares = append(shares, share(c, r.DrainSeconds)+" during the drain")
	}
	for _, ref := range r.Reference {
		if c := ref.CPU; c != nil {
			p("| reference, %d per transaction | - | - | %.1f | %.1f | %.1f | %.1f | %.1f | | | %.0f | | |\n", ref.Chunk, c[tierPostgres], c[tierPostgresDB], c[tierLoad], c[tierOther], c[tierMachine],
				perAttempt(c[tierPostgresDB]+c[tierLoad]))
			shares = append(shares, fmt.Sprintf("%s during the reference of %d per transaction", share(c, ref.Seconds), ref.Chunk))
		}
	}
	p("\nCPU seconds over each window, as in the table above (stackbench is the reference's client; during the drain it only polls). The machine has %d CPUs. CPU per attempt is worker + nats-server + bench db backends for the drain, bench db backends + stackbench (the client) for a reference. Peak RSS is VmHWM: the worker's over its whole life, the nats-server's over the drain.", cpus)
	if len(shares) > 0 {
		p(" Share of the CPUs that programs outside the benchmark took: %s; a window that shared the machine more ran with less of it.", strings.Join(shares, ", "))
	}
	if r.WorkerProfile != "" {
		p(" A 15 s CPU profile of the worker was taken during the drain (%s, kept with -keep).", filepath.Base(r.WorkerProfile))
	}
	p("\n")
}
