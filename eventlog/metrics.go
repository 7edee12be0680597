package eventlog

import (
	"github.com/prometheus/client_golang/prometheus"
)

// BatchCollector reports how a Publisher publishes, labelled by family: the size of each atomic
// batch, how often a batch refused for a duplicate went again without it,
// and how many attempts went one at a time (in a batch below MinMessages,
// too large, in a batch it could not settle, on a stream without atomic
// batches, or because their id was sent lately: a likely re-send). Register it once: reg.MustRegister(eventlog.NewBatchCollector(b)).
type BatchCollector struct {
	sizes     prometheus.Histogram
	resends   prometheus.Counter
	unbatched prometheus.Counter
	held      prometheus.Counter
	alone     prometheus.Counter
}

func newBatchCollector(family, stream string) *BatchCollector {
	labels := prometheus.Labels{"family": family, "stream": stream}
	return &BatchCollector{
		sizes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "quizstream_publish_batch_size_messages",
			Help:        "Messages per atomic batch publish, re-sends included, by event family.",
			Buckets:     []float64{2, 5, 10, 20, 50, 100, 200, 500, 1000},
			ConstLabels: labels,
		}),
		resends: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "quizstream_publish_batch_resends_total",
			ConstLabels: labels,
			Help:        "Atomic batches refused for holding a duplicate attempt and sent again without it.",
		}),
		unbatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "quizstream_publish_unbatched_attempts_total",
			ConstLabels: labels,
			Help:        "Messages published one at a time.",
		}),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "quizstream_publish_held_duplicates_total",
			ConstLabels: labels,
			Help:        "Retried attempts answered from the API's own view of the stream, without a publish.",
		}),
		alone: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "quizstream_publish_recent_id_alone_total",
			ConstLabels: labels,
			Help:        "Messages whose id the publisher sent lately (likely re-sends), published one at a time rather than in a batch they would get refused.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *BatchCollector) Describe(ch chan<- *prometheus.Desc) {
	c.sizes.Describe(ch)
	c.resends.Describe(ch)
	c.unbatched.Describe(ch)
	c.held.Describe(ch)
	c.alone.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *BatchCollector) Collect(ch chan<- prometheus.Metric) {
	c.sizes.Collect(ch)
	c.resends.Collect(ch)
	c.unbatched.Collect(ch)
	c.held.Collect(ch)
	c.alone.Collect(ch)
}
