package events

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamCollector reports the attempts stream and its consumer at each
// scrape: how much is waiting, how much is redelivered, and how old the
// oldest unstored attempt is. Past the stream's MaxAge that attempt would
// be deleted before any worker stored it, so alert well before
// quizstream_stream_oldest_unacked_age_seconds nears
// quizstream_stream_max_age_seconds.
type StreamCollector struct {
	log     *Log
	maxAge  time.Duration
	timeout time.Duration

	messages, bytes, pending, ackPending, redelivered, oldestAge, maxAgeDesc, up *prometheus.Desc
}

// NewStreamCollector returns a collector for the stream and consumer of l.
func NewStreamCollector(l *Log) *StreamCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("quizstream_stream_"+name, help, nil, nil)
	}
	return &StreamCollector{
		log:         l,
		maxAge:      l.stream.CachedInfo().Config.MaxAge,
		timeout:     2 * time.Second,
		messages:    d("messages", "Messages held by the attempts stream."),
		bytes:       d("bytes", "Bytes held by the attempts stream."),
		pending:     d("pending_messages", "Messages not yet delivered to any worker."),
		ackPending:  d("ack_pending_messages", "Messages delivered to workers and not yet acknowledged."),
		redelivered: d("redelivered_messages", "Delivered messages that were delivered more than once and are not yet acknowledged."),
		oldestAge:   d("oldest_unacked_age_seconds", "Age of the oldest message the workers have not settled; 0 when none."),
		maxAgeDesc:  d("max_age_seconds", "The stream's MaxAge: an unsettled message older than it is lost."),
		up:          d("up", "1 when the stream and consumer answered the last scrape."),
	}
}

// Describe implements prometheus.Collector.
func (c *StreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.bytes, c.pending, c.ackPending, c.redelivered, c.oldestAge, c.maxAgeDesc, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StreamCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(c.maxAgeDesc, c.maxAge.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	si, err := c.log.stream.Info(ctx)
	if err != nil {
		gauge(c.up, 0)
		return
	}
	cons, err := c.log.Consumer(ctx)
	if err != nil {
		gauge(c.up, 0)
		return
	}
	ci := cons.CachedInfo()
	gauge(c.up, 1)
	gauge(c.messages, float64(si.State.Msgs))
	gauge(c.bytes, float64(si.State.Bytes))
	gauge(c.pending, float64(ci.NumPending))
	gauge(c.ackPending, float64(ci.NumAckPending))
	gauge(c.redelivered, float64(ci.NumRedelivered))
	age := 0.0
	if ci.AckFloor.Stream < si.State.LastSeq {
		// The first message above the floor is the oldest unsettled one.
		m, err := c.log.stream.GetMsg(ctx, ci.AckFloor.Stream+1, jetstream.WithGetMsgSubject(SubjectPrefix+".>"))
		if err == nil {
			age = time.Since(m.Time).Seconds()
		}
	}
	gauge(c.oldestAge, age)
}

// BatchCollector reports how a Batcher publishes: the size of each atomic
// batch, how often a batch refused for a duplicate went again without it,
// and how many attempts went one at a time (in a batch below MinMessages,
// too large, in a batch it could not settle, or on a stream without atomic
// batches). Register it once: reg.MustRegister(events.NewBatchCollector(b)).
type BatchCollector struct {
	sizes     prometheus.Histogram
	resends   prometheus.Counter
	unbatched prometheus.Counter
}

func newBatchCollector() *BatchCollector {
	return &BatchCollector{
		sizes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quizstream_publish_batch_size_messages",
			Help:    "Attempts per atomic batch publish, re-sends included.",
			Buckets: []float64{2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		resends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_publish_batch_resends_total",
			Help: "Atomic batches refused for holding a duplicate attempt and sent again without it.",
		}),
		unbatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_publish_unbatched_attempts_total",
			Help: "Attempts the batcher published one at a time.",
		}),
	}
}

// NewBatchCollector returns the collector of b's metrics, to register once.
func NewBatchCollector(b *Batcher) *BatchCollector { return b.metrics }

// Describe implements prometheus.Collector.
func (c *BatchCollector) Describe(ch chan<- *prometheus.Desc) {
	c.sizes.Describe(ch)
	c.resends.Describe(ch)
	c.unbatched.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *BatchCollector) Collect(ch chan<- prometheus.Metric) {
	c.sizes.Collect(ch)
	c.resends.Collect(ch)
	c.unbatched.Collect(ch)
}
