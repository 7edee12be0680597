package streams

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamCollector reports the attempts stream and its consumer at each
// scrape: how full the stream is against its limits (past them every
// attempt POST is refused), how much is waiting, how much is redelivered,
// how far the ack floor lags, and how old the oldest unstored attempt is.
// Past the stream's MaxAge that attempt would be deleted before any worker
// stored it, so alert well before quizstream_stream_oldest_unacked_age_seconds
// nears quizstream_stream_max_age_seconds. Alert thresholds:
// docs/operations.md.
type StreamCollector struct {
	js       jetstream.JetStream
	stream   string
	consumer string
	timeout  time.Duration

	messages, bytes, subjects, maxMessages, maxBytes, fill, full *prometheus.Desc
	pending, ackPending, redelivered, lag, oldestAge, maxAgeDesc *prometheus.Desc
	deadLetters, deadLetterFill, up                              *prometheus.Desc
}

// NewStreamCollector returns a collector for the stream and the consumer
// cfg names (and the dead-letter stream named after it).
func NewStreamCollector(js jetstream.JetStream, cfg StreamConfig) *StreamCollector {
	cfg.defaults()
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("quizstream_stream_"+name, help, nil, nil)
	}
	return &StreamCollector{
		js:             js,
		stream:         cfg.Name,
		consumer:       cfg.Consumer,
		timeout:        2 * time.Second,
		messages:       d("messages", "Messages held by the attempts stream."),
		bytes:          d("bytes", "Bytes held by the attempts stream."),
		subjects:       d("subjects", "Distinct subjects held by the attempts stream (one per attempt): the server keeps each in memory."),
		maxMessages:    d("max_messages", "The stream's MaxMsgs (0: none); past it every attempt POST is refused."),
		maxBytes:       d("max_bytes", "The stream's MaxBytes (0: none); past it every attempt POST is refused."),
		fill:           d("fill_ratio", "The larger of bytes/max_bytes and messages/max_messages, 0 to 1."),
		full:           d("full", "1 when the stream refuses publishes for being full (less than 64 KiB or no message left)."),
		pending:        d("pending_messages", "Messages not yet delivered to any worker."),
		ackPending:     d("ack_pending_messages", "Messages delivered to workers and not yet acknowledged."),
		redelivered:    d("redelivered_messages", "Delivered messages that were delivered more than once and are not yet acknowledged."),
		lag:            d("ack_floor_lag_messages", "Messages above the consumer's ack floor: the stream's last sequence minus the floor."),
		oldestAge:      d("oldest_unacked_age_seconds", "Age of the oldest message the workers have not settled; 0 when none."),
		maxAgeDesc:     d("max_age_seconds", "The stream's MaxAge: an unsettled message older than it is lost."),
		deadLetters:    d("dead_letter_messages", "Messages held by the dead-letter stream."),
		deadLetterFill: d("dead_letter_fill_ratio", "Bytes of the dead-letter stream over its MaxBytes, 0 to 1; full, poison stays unsettled."),
		up:             d("up", "1 when the stream and consumer answered the last scrape."),
	}
}

// Describe implements prometheus.Collector.
func (c *StreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.bytes, c.subjects, c.maxMessages, c.maxBytes, c.fill, c.full,
		c.pending, c.ackPending, c.redelivered, c.lag, c.oldestAge, c.maxAgeDesc, c.deadLetters, c.deadLetterFill, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StreamCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.js.Stream(ctx, c.stream)
	if err != nil {
		gauge(c.up, 0)
		return
	}
	si, err := s.Info(ctx)
	if err != nil {
		gauge(c.up, 0)
		return
	}
	capacity := CapacityOf(si)
	gauge(c.maxAgeDesc, si.Config.MaxAge.Seconds())
	gauge(c.messages, float64(si.State.Msgs))
	gauge(c.bytes, float64(si.State.Bytes))
	gauge(c.subjects, float64(si.State.NumSubjects))
	gauge(c.maxMessages, float64(max(si.Config.MaxMsgs, 0)))
	gauge(c.maxBytes, float64(max(si.Config.MaxBytes, 0)))
	gauge(c.fill, capacity.Fill())
	gauge(c.full, boolGauge(capacity.Full()))
	if dl, err := streamInfo(ctx, c.js, si.Config.Name+"_DLQ"); err == nil {
		gauge(c.deadLetters, float64(dl.State.Msgs))
		gauge(c.deadLetterFill, CapacityOf(dl).Fill())
	}
	cons, err := c.js.Consumer(ctx, c.stream, c.consumer)
	if err != nil {
		gauge(c.up, 0)
		return
	}
	ci := cons.CachedInfo()
	gauge(c.up, 1)
	gauge(c.pending, float64(ci.NumPending))
	gauge(c.ackPending, float64(ci.NumAckPending))
	gauge(c.redelivered, float64(ci.NumRedelivered))
	lag := 0.0
	if si.State.LastSeq > ci.AckFloor.Stream {
		lag = float64(si.State.LastSeq - ci.AckFloor.Stream)
	}
	gauge(c.lag, lag)
	gauge(c.oldestAge, oldestUnacked(ctx, s, ci.AckFloor.Stream, si.State.LastSeq).Seconds())
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
