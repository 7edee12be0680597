package streams

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamCollector reports every family's streams and consumers at each
// scrape, labelled by family and stream (and consumer): how full each
// stream is against its limits (past them every publish into it is
// refused), how much is waiting, how much is redelivered, how far each ack
// floor lags, and how old the oldest unsettled event is. Past the stream's
// MaxAge that event would be deleted before any worker stored it, so alert
// well before quizstream_stream_oldest_unacked_age_seconds nears
// quizstream_stream_max_age_seconds. Alert thresholds: docs/operations.md.
type StreamCollector struct {
	js       jetstream.JetStream
	families []Family
	timeout  time.Duration

	messages, bytes, subjects, maxMessages, maxBytes, fill, full, maxAgeDesc *prometheus.Desc
	pending, ackPending, redelivered, lag, oldestAge                         *prometheus.Desc
	deadLetters, deadLetterFill, up                                          *prometheus.Desc
}

// NewStreamCollector returns a collector for the streams and consumers of
// families (a family's optional stream, its dead letters, is reported as such).
func NewStreamCollector(js jetstream.JetStream, families ...Family) *StreamCollector {
	streamLabels := []string{"family", "stream"}
	consumerLabels := []string{"family", "stream", "consumer"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("quizstream_stream_"+name, help, labels, nil)
	}
	return &StreamCollector{
		js:             js,
		families:       families,
		timeout:        2 * time.Second,
		messages:       d("messages", "Messages held by the stream.", streamLabels),
		bytes:          d("bytes", "Bytes held by the stream.", streamLabels),
		subjects:       d("subjects", "Distinct subjects held by the stream (one per attempt in ATTEMPTS): the server keeps each in memory.", streamLabels),
		maxMessages:    d("max_messages", "The stream's MaxMsgs (0: none); past it every publish into it is refused.", streamLabels),
		maxBytes:       d("max_bytes", "The stream's MaxBytes (0: none); past it every publish into it is refused.", streamLabels),
		fill:           d("fill_ratio", "The larger of bytes/max_bytes and messages/max_messages, 0 to 1.", streamLabels),
		full:           d("full", "1 when the stream refuses publishes for being full (less than 64 KiB or no message left).", streamLabels),
		maxAgeDesc:     d("max_age_seconds", "The stream's MaxAge: an unsettled message older than it is lost.", streamLabels),
		pending:        d("pending_messages", "Messages not yet delivered to any worker.", consumerLabels),
		ackPending:     d("ack_pending_messages", "Messages delivered to workers and not yet acknowledged.", consumerLabels),
		redelivered:    d("redelivered_messages", "Delivered messages that were delivered more than once and are not yet acknowledged.", consumerLabels),
		lag:            d("ack_floor_lag_messages", "Messages above the consumer's ack floor: the stream's last sequence minus the floor.", consumerLabels),
		oldestAge:      d("oldest_unacked_age_seconds", "Age of the oldest message the consumer has not settled; 0 when none.", consumerLabels),
		deadLetters:    d("dead_letter_messages", "Messages held by the dead-letter stream.", streamLabels),
		deadLetterFill: d("dead_letter_fill_ratio", "Bytes of the dead-letter stream over its MaxBytes, 0 to 1; full, poison stays unsettled.", streamLabels),
		up:             d("up", "1 when the family's streams and consumers answered the last scrape.", []string{"family"}),
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
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, f := range c.families {
		gauge(ch, c.up, boolGauge(c.collect(ctx, ch, f)), f.Name)
	}
}

// collect reports one family, and whether all of it answered.
func (c *StreamCollector) collect(ctx context.Context, ch chan<- prometheus.Metric, f Family) bool {
	up := true
	found := map[string]*jetstream.StreamInfo{}
	for _, s := range f.Streams {
		name := s.Config.Name
		si, err := streamInfo(ctx, c.js, name)
		if err != nil {
			up = up && s.Optional
			continue
		}
		found[name] = si
		capacity := CapacityOf(si)
		if s.Optional {
			gauge(ch, c.deadLetters, float64(si.State.Msgs), f.Name, name)
			gauge(ch, c.deadLetterFill, capacity.Fill(), f.Name, name)
			continue
		}
		gauge(ch, c.maxAgeDesc, si.Config.MaxAge.Seconds(), f.Name, name)
		gauge(ch, c.messages, float64(si.State.Msgs), f.Name, name)
		gauge(ch, c.bytes, float64(si.State.Bytes), f.Name, name)
		gauge(ch, c.subjects, float64(si.State.NumSubjects), f.Name, name)
		gauge(ch, c.maxMessages, float64(max(si.Config.MaxMsgs, 0)), f.Name, name)
		gauge(ch, c.maxBytes, float64(max(si.Config.MaxBytes, 0)), f.Name, name)
		gauge(ch, c.fill, capacity.Fill(), f.Name, name)
		// A stream that discards its oldest (the timers) never refuses.
		gauge(ch, c.full, boolGauge(capacity.Full() && si.Config.Discard == jetstream.DiscardNew), f.Name, name)
	}
	for _, co := range f.Consumers {
		si := found[co.Stream]
		if si == nil {
			up = false
			continue
		}
		cons, err := c.js.Consumer(ctx, co.Stream, co.Config.Durable)
		if err != nil {
			up = false
			continue
		}
		ci := cons.CachedInfo()
		labels := []string{f.Name, co.Stream, co.Config.Durable}
		gauge(ch, c.pending, float64(ci.NumPending), labels...)
		gauge(ch, c.ackPending, float64(ci.NumAckPending), labels...)
		gauge(ch, c.redelivered, float64(ci.NumRedelivered), labels...)
		lag := 0.0
		if si.State.LastSeq > ci.AckFloor.Stream {
			lag = float64(si.State.LastSeq - ci.AckFloor.Stream)
		}
		gauge(ch, c.lag, lag, labels...)
		filter := co.Config.FilterSubject
		if filter == "" && len(si.Config.Subjects) == 1 {
			filter = si.Config.Subjects[0]
		}
		age := time.Duration(0)
		if s, err := c.js.Stream(ctx, co.Stream); err == nil {
			age = oldestUnacked(ctx, s, filter, ci.AckFloor.Stream, si.State.LastSeq)
		}
		gauge(ch, c.oldestAge, age.Seconds(), labels...)
	}
	return up
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
