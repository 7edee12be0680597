package eventlog_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
)

// A retry is recognised inside the duplicate window (by Nats-Msg-Id) and
// long after it (by the per-attempt subject), and the original comes back.
func TestPublishAttemptDuplicates(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	window := 500 * time.Millisecond
	lg, err := eventlog.NewLog(t.Context(), js, streams.StreamConfig{Duplicates: window})
	if err != nil {
		t.Fatal(err)
	}
	student := uuid.New()
	orig := eventstest.Attempt(student, "k1", []events.Answer{{QuestionID: "q", ChoiceID: "c"}})
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
	other := eventstest.Attempt(uuid.New(), "k1", nil) // the same key, another student
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
