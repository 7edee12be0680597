package streams_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
)

func TestStreamCollector(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := streams.StreamConfig{MaxAge: time.Hour, MaxMsgs: 4, MaxBytes: 1 << 20}
	lg, err := eventlog.NewLog(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(streams.NewStreamCollector(js, streams.Attempts(cfg)))
	gather := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			out[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		}
		return out
	}
	if m := gather(); m["quizstream_stream_up"] != 1 || m["quizstream_stream_oldest_unacked_age_seconds"] != 0 ||
		m["quizstream_stream_max_age_seconds"] != 3600 {
		t.Fatalf("empty stream: %v", m)
	}
	for range 3 {
		if _, err := lg.PublishAttempt(t.Context(), eventstest.Attempt(uuid.New(), "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // an age to measure
	m := gather()
	if m["quizstream_stream_messages"] != 3 || m["quizstream_stream_pending_messages"] != 3 ||
		m["quizstream_stream_oldest_unacked_age_seconds"] <= 0 || m["quizstream_stream_subjects"] != 3 ||
		m["quizstream_stream_fill_ratio"] != 0.75 || m["quizstream_stream_max_messages"] != 4 ||
		m["quizstream_stream_max_bytes"] != 1<<20 || m["quizstream_stream_ack_floor_lag_messages"] != 3 ||
		m["quizstream_stream_full"] != 0 || m["quizstream_stream_dead_letter_messages"] != 0 {
		t.Fatalf("three unstored messages: %v", m)
	}
	if _, err := lg.PublishAttempt(t.Context(), eventstest.Attempt(uuid.New(), "", nil)); err != nil {
		t.Fatal(err)
	}
	if m := gather(); m["quizstream_stream_full"] != 1 || m["quizstream_stream_fill_ratio"] != 1 {
		t.Fatalf("a full stream: %v", m)
	}
}
