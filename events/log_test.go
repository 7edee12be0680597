package events_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
)

func newEvent(student uuid.UUID, key string, answers []events.Answer) events.AttemptSubmitted {
	quiz := uuid.New()
	return events.AttemptSubmitted{
		AttemptID: events.AttemptID(student, key), StudentID: student, QuizID: quiz, CourseID: uuid.New(),
		IdempotencyKey: key, Answers: answers, AnswersHash: events.HashAnswers(quiz, answers),
		Score: 0, MaxScore: 10, SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

// A retry is recognised inside the duplicate window (by Nats-Msg-Id) and
// long after it (by the per-attempt subject), and the original comes back.
func TestPublishAttemptDuplicates(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	window := 500 * time.Millisecond
	lg, err := events.NewLog(t.Context(), js, events.StreamConfig{Duplicates: window})
	if err != nil {
		t.Fatal(err)
	}
	student := uuid.New()
	orig := newEvent(student, "k1", []events.Answer{{QuestionID: "q", ChoiceID: "c"}})
	first, err := lg.PublishAttempt(t.Context(), orig)
	if err != nil || first.Duplicate || first.Seq != 1 {
		t.Fatalf("first publish: %+v, %v", first, err)
	}

	retry := orig
	retry.SubmittedAt = orig.SubmittedAt.Add(time.Second)
	retry.Answers = nil // a different payload under the same id
	for _, when := range []string{"inside the window", "after the window"} {
		if when == "after the window" {
			time.Sleep(2 * window)
		}
		got, err := lg.PublishAttempt(t.Context(), retry)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !got.Duplicate || got.Seq != first.Seq || !got.Event.SubmittedAt.Equal(orig.SubmittedAt) ||
			!bytes.Equal(got.Event.AnswersHash, orig.AnswersHash) || len(got.Event.Answers) != 1 {
			t.Fatalf("%s: got %+v, want the original at seq %d", when, got, first.Seq)
		}
	}
	other := newEvent(uuid.New(), "k1", nil) // the same key, another student
	if got, err := lg.PublishAttempt(t.Context(), other); err != nil || got.Duplicate {
		t.Fatalf("another student's key: %+v, %v", got, err)
	}
	if n := eventstest.StreamMessages(t, js, "ATTEMPTS"); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
	if floor, err := lg.AckFloor(t.Context()); err != nil || floor != 0 {
		t.Fatalf("ack floor = %d, %v; want 0 with no worker", floor, err)
	}
}

func TestStreamCollector(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	lg, err := events.NewLog(t.Context(), js, events.StreamConfig{MaxAge: time.Hour, MaxMsgs: 4, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(events.NewStreamCollector(lg))
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
		if _, err := lg.PublishAttempt(t.Context(), newEvent(uuid.New(), "", nil)); err != nil {
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
	if _, err := lg.PublishAttempt(t.Context(), newEvent(uuid.New(), "", nil)); err != nil {
		t.Fatal(err)
	}
	if m := gather(); m["quizstream_stream_full"] != 1 || m["quizstream_stream_fill_ratio"] != 1 {
		t.Fatalf("a full stream: %v", m)
	}
}
