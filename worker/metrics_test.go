package worker

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Several workers in one process count into one set of collectors.
func TestMetricsShareOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatalf("second worker: %v", err)
	}
	a.messages.WithLabelValues("attempts", "poison").Inc()
	b.messages.WithLabelValues("exams", "poison").Inc()
	b.retries.Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	if got["quizstream_worker_messages_total"] != 2 || got["quizstream_worker_write_retries_total"] != 1 {
		t.Fatalf("counters = %v, want both workers' counts", got)
	}
}
