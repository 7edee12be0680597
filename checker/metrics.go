package checker

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	checks  *prometheus.CounterVec
	retries prometheus.Counter
}

// newMetrics builds the client's collectors and registers them on reg
// (none when reg is nil); state reads the breaker's state for the gauge.
func newMetrics(reg prometheus.Registerer, state, inFlight func() float64) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_checker_calls_total",
			Help: "HTTP calls to the code checker, by outcome: ok, rejected (4xx), server_error (5xx, 429), timeout, network, engine_error (status 13/14 or a lost submission), bad_answer, cancelled, breaker_open (not sent).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quizstream_checker_call_duration_seconds",
			Help:    "Duration of HTTP calls to the code checker, by operation (submit, poll).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"op"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_checker_checks_total",
			Help: "Checks ended, by result: passed, failed, retriable_error (try later), final_error.",
		}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_checker_retries_total",
			Help: "Retries of transient checker failures within a check.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	breaker := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quizstream_checker_breaker_state",
		Help: "The checker's circuit breaker: 0 closed, 1 half-open, 2 open.",
	}, state)
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quizstream_checker_checks_in_flight",
		Help: "Checks holding one of the MaxConcurrent slots (their submissions are at the checker).",
	}, inFlight)
	for _, c := range []prometheus.Collector{m.calls, m.latency, m.checks, m.retries, breaker, running} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("checker: register metrics: %w", err)
		}
	}
	return m, nil
}
