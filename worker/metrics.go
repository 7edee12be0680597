package worker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages     *prometheus.CounterVec
	retries      prometheus.Counter
	batchSeconds prometheus.Histogram
	batchSize    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_worker_messages_total",
			Help: "Messages settled by the worker, by result: stored (new row), duplicate (stored before), poison (terminated).",
		}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_worker_write_retries_total",
			Help: "Batch writes retried after a failure.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quizstream_worker_batch_duration_seconds",
			Help:    "Time from fetch to ack of one batch, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quizstream_worker_batch_messages",
			Help:    "Messages per fetched batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.retries, m.batchSeconds, m.batchSize} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
