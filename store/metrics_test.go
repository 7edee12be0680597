package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

// gauges reads every metric of reg as one value by name.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// The pool's metrics follow pgxpool's own statistics: its size, what is
// idle, how many acquires there were, how long they waited (a wait on a
// full pool included) and how many gave up.
func TestPoolMetrics(t *testing.T) {
	t.Parallel()
	_, url := storetest.Open(t)
	reg := prometheus.NewRegistry()
	st, err := store.Open(t.Context(), store.Config{URL: url, MaxConns: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pool := st.Pool()

	a, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := gauges(t, reg)
	if m["quizstream_store_pool_max_connections"] != 2 || m["quizstream_store_pool_acquired_connections"] != 2 ||
		m["quizstream_store_pool_idle_connections"] != 0 {
		t.Fatalf("both connections held: %v", m)
	}
	before := m["quizstream_store_pool_acquires_total"]

	// A full pool: one acquire gives up, another waits for a release.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	if c, err := pool.Acquire(ctx); err == nil {
		c.Release()
		t.Fatal("a third connection from a pool of two")
	}
	cancel()
	const held = 50 * time.Millisecond
	go func() {
		time.Sleep(held)
		a.Release()
	}()
	c, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	b.Release()

	m = gauges(t, reg)
	if got := m["quizstream_store_pool_canceled_acquires_total"]; got != 1 {
		t.Errorf("canceled acquires: %v, want 1", got)
	}
	if got := m["quizstream_store_pool_acquires_total"] - before; got != 1 {
		t.Errorf("acquires since both were held: %v, want 1", got)
	}
	if got := m["quizstream_store_pool_empty_acquire_wait_seconds_total"]; got < held.Seconds()/2 {
		t.Errorf("empty acquire wait: %vs, want about %v", got, held)
	}
	if got := m["quizstream_store_pool_acquire_seconds_total"]; got < m["quizstream_store_pool_empty_acquire_wait_seconds_total"] {
		t.Errorf("acquire time %vs is less than its wait on an empty pool", got)
	}
	if m["quizstream_store_pool_idle_connections"] != 2 || m["quizstream_store_pool_acquired_connections"] != 0 {
		t.Errorf("all released: %v", m)
	}
}
