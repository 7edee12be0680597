//go:build faults

package suite

import (
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
)

// TestFaultSlowDatabase puts 50ms of latency each way between the service
// and PostgreSQL and sends a burst of attempts: POST latency must not
// follow the database (the stream absorbs the burst), and the backlog
// drains with the latency still on. A batch then takes longer than
// AckWait (400ms here): only the workers' InProgress heartbeats keep their
// batches from being redelivered to each other again and again.
func TestFaultSlowDatabase(t *testing.T) {
	const delay = 50 * time.Millisecond
	s := apptest.New(t, streams.StreamConfig{AckWait: 400 * time.Millisecond})
	proxy, ps := faults.Proxied(t, s)
	_, a := ps.SpawnAPI(t, "")
	ops := apptest.FreeAddr(t)
	ps.Spawn(t, "worker", "WORKERS=2", "METRICS_ADDR="+ops)
	students := faults.Students(t, a, "slowdb", 16)
	l := faults.NewLedger()
	watch := faults.StartWatch(t, s)

	// Baseline: the same burst shape on a fast database.
	base := faults.StartLoad(t, s, l, faults.LoadConfig{URLs: []string{a}, Students: students, Attempts: 1000, Prefix: "slowdb-base"})
	baseRes := base.Wait(t, time.Minute)
	s.WaitDrained(t, 30*time.Second)
	baseLat := base.Latencies(time.Time{}, time.Now())
	d0, r0 := faults.Redeliveries(t, s)
	sum0, n0 := faults.BatchSeconds(t, ops)

	proxy.SetDelay(delay)
	rtt := faults.DatabaseRTT(t, ps.DBURL)
	burst := faults.StartLoad(t, s, l, faults.LoadConfig{URLs: []string{a}, Students: students, Attempts: 5000, Prefix: "slowdb-burst"})
	burstRes := burst.Wait(t, 2*time.Minute)
	atEnd, err := faults.State(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	endAt := time.Now()
	var drained time.Duration
	apptest.WaitFor(t, 60*time.Second, "the backlog to drain with the database still slow", func() bool {
		st, err := faults.State(t.Context(), s)
		drained = time.Since(endAt)
		return err == nil && st.Floor >= atEnd.Last
	})
	proxy.SetDelay(0)
	s.WaitDrained(t, 10*time.Second)
	burstLat := burst.Latencies(time.Time{}, time.Now())
	d1, r1 := faults.Redeliveries(t, s)
	sum1, n1 := faults.BatchSeconds(t, ops)
	batch := time.Duration((sum1 - sum0) / (n1 - n0) * float64(time.Second))

	tally := faults.Check(t, s, l)
	t.Logf("result: %s", tally)
	var backlog uint64
	for _, smp := range watch.Between(burstRes.Start, endAt) {
		backlog = max(backlog, smp.Last-min(smp.Floor, smp.Last))
	}
	t.Logf("baseline: %s; POST p50 %s, p99 %s", baseRes, faults.Percentile(baseLat, 0.5), faults.Percentile(baseLat, 0.99))
	t.Logf("burst with %s each way (a query round trip %s): %s; POST p50 %s, p99 %s", delay, rtt.Round(time.Millisecond),
		burstRes, faults.Percentile(burstLat, 0.5), faults.Percentile(burstLat, 0.99))
	t.Logf("stream absorbed the burst: largest backlog %d events, %d left at the burst's end, drained %s after it with the latency on (%.0f events/s, a batch %s on average); deliveries %d, redeliveries %d (before the delay: %d, %d; AckWait %s)",
		backlog, atEnd.Last-atEnd.Floor, drained.Round(time.Millisecond), float64(atEnd.Last-atEnd.Floor)/drained.Seconds(), batch.Round(time.Millisecond),
		d1, r1, d0, r0, s.Stream.AckWait)
	if burstRes.Requests != burstRes.Statuses[http.StatusAccepted] || baseRes.Requests != baseRes.Statuses[http.StatusAccepted] {
		t.Errorf("POSTs not answered 202: baseline %v, burst %v", baseRes.Statuses, burstRes.Statuses)
	}
	// A POST that waited on PostgreSQL would take at least one round trip.
	if p50 := faults.Percentile(burstLat, 0.5); p50 >= 2*delay {
		t.Errorf("POST p50 %s with the database slow, at least a database round trip (%s): the POST waits on PostgreSQL", p50, 2*delay)
	}
	if batch <= s.Stream.AckWait {
		t.Errorf("a batch took %s on average, no more than AckWait (%s): the test does not show what InProgress is for", batch, s.Stream.AckWait)
	}
	if backlog == 0 {
		t.Error("no backlog ever formed: the burst did not outrun the slow workers")
	}
	// A storm is every batch handed out again (thousands here without
	// InProgress); a batch or two redelivered once would be a slip.
	if r1-r0 > 1000 {
		t.Errorf("%d redeliveries during the slow phase: a redelivery storm", r1-r0)
	}
}
