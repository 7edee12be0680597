package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// start runs one worker on the fixture with cfg until the test ends,
// without waiting for the stream to drain, and returns its metrics.
func (f *fixture) start(t *testing.T, cfg worker.Config) *prometheus.Registry {
	t.Helper()
	cons, err := f.log.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.AckWait, cfg.Registerer = f.cfg.AckWait, reg
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 8
	}
	cfg.MaxWait = 50 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	w, err := worker.New(cons, f.st, f.dl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return reg
}

// waitFor polls cond for up to timeout and fails t with what when it never held.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (f *fixture) consumerInfo(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	cons, err := f.log.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cons.CachedInfo()
}

// A poison message whose dead letter cannot be written (the dead-letter
// stream missing, or full) does not hold the worker: the good messages of
// its batch and of later batches are stored, the poison stays in the
// stream unacknowledged (never terminated) and is counted, and once the
// dead-letter stream is back it is set aside as usual.
func TestDeadLetterFailureDoesNotBlock(t *testing.T) {
	t.Parallel()
	for name, breakDLQ := range map[string]func(f *fixture){
		"missing": func(f *fixture) {
			if err := f.js.DeleteStream(t.Context(), f.cfg.DeadLetterStream()); err != nil {
				t.Fatal(err)
			}
		},
		"full": func(f *fixture) {
			s, err := f.js.Stream(t.Context(), f.cfg.DeadLetterStream())
			if err != nil {
				t.Fatal(err)
			}
			c := s.CachedInfo().Config
			c.MaxBytes = 64 // smaller than any dead letter
			if _, err := f.js.UpdateStream(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			breakDLQ(f)
			student := uuid.New()
			f.publish(t, f.event(t, student, 1, nil))
			ack, err := f.js.Publish(t.Context(), events.AttemptSubject(student, uuid.New()), []byte("{garbage"))
			if err != nil {
				t.Fatal(err)
			}
			poisonSeq := ack.Sequence
			f.publish(t, f.event(t, student, 2, nil))
			reg := f.start(t, worker.Config{DeadLetterTimeout: 300 * time.Millisecond})

			waitFor(t, 10*time.Second, "the good messages of the poison's batch to be stored", func() bool {
				return f.count(t, `SELECT count(*) FROM attempts`) == 2
			})
			f.publish(t, f.event(t, student, 3, nil))
			waitFor(t, 10*time.Second, "a later batch to be stored", func() bool {
				return f.count(t, `SELECT count(*) FROM attempts`) == 3
			})
			if ci := f.consumerInfo(t); ci.AckFloor.Stream >= poisonSeq || ci.NumAckPending != 1 {
				t.Fatalf("ack floor %d, %d unacknowledged: the poison at seq %d was settled without its dead letter",
					ci.AckFloor.Stream, ci.NumAckPending, poisonSeq)
			}
			if got := labeled(t, reg, "quizstream_worker_dead_letter_failures_total", "", ""); got < 1 {
				t.Fatalf("dead_letter_failures_total = %v, want at least 1", got)
			}
			if got := counter(t, reg, "quizstream_worker_messages_total", "poison"); got != 0 {
				t.Fatalf("poison counted as set aside: %v", got)
			}

			// The dead-letter stream back, the poison is set aside at its
			// next delivery (after AckWait).
			if _, err := streams.EnsureDeadLetters(t.Context(), f.js, f.cfg); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 3*f.cfg.AckWait, "the poison to be set aside once the dead-letter stream is back", func() bool {
				return f.consumerInfo(t).AckFloor.Stream == 4
			})
			if letters, err := f.dl.List(t.Context(), 0, 10); err != nil || len(letters) != 1 || letters[0].OriginalSeq != poisonSeq {
				t.Fatalf("dead letters: %+v, %v", letters, err)
			}
		})
	}
}

// An event of a newer schema version than this worker knows (a newer
// quizstream wrote it during a rolling deploy) is handed back with a delay,
// for a newer worker, never dead-lettered nor stored as a tombstone; the
// events around it are stored.
func TestNewerSchemaIsHandedBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	student := uuid.New()
	f.publish(t, f.event(t, student, 1, nil))
	v2 := f.event(t, student, 5, nil)
	data, err := events.Encode(v2)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), `"schema":1`, `"schema":2`, 1))
	ack, err := f.js.Publish(t.Context(), v2.Subject(), data)
	if err != nil {
		t.Fatal(err)
	}
	f.publish(t, f.event(t, student, 2, nil))
	reg := f.start(t, worker.Config{NewerSchemaDelay: 200 * time.Millisecond})

	waitFor(t, 10*time.Second, "the version 1 events to be stored", func() bool {
		return f.count(t, `SELECT count(*) FROM attempts`) == 2
	})
	waitFor(t, 10*time.Second, "the newer event to be handed back more than once", func() bool {
		return counter(t, reg, "quizstream_worker_messages_total", "newer_schema") >= 2
	})
	if n, err := f.dl.Count(t.Context()); err != nil || n != 0 {
		t.Fatalf("dead letters: %d, %v; a newer event is not poison", n, err)
	}
	if n := f.count(t, `SELECT count(*) FROM attempts WHERE id = $1`, v2.AttemptID); n != 0 {
		t.Fatal("the newer event was stored, as a tombstone or otherwise")
	}
	if ci := f.consumerInfo(t); ci.AckFloor.Stream >= ack.Sequence {
		t.Fatalf("ack floor %d passed the newer event at %d: it was settled", ci.AckFloor.Stream, ack.Sequence)
	}
	if got := counter(t, reg, "quizstream_worker_messages_total", "poison"); got != 0 {
		t.Fatalf("poison = %v", got)
	}
}

// A batch stuck on a lock is bounded twice: each statement by the
// statement timeout, the whole hold by MaxBatchHold, past which the batch
// is handed back and the worker stores other batches meanwhile; the lock
// gone, the stuck batch is stored.
func TestStuckBatchIsHandedBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stuck := uuid.New()
	first := f.event(t, stuck, 1, nil)
	f.publish(t, first)
	f.run(t, nil) // the student's progress row exists
	tx, err := f.st.Pool().Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM progress WHERE student_id = $1 FOR UPDATE`, stuck); err != nil {
		t.Fatal(err)
	}
	again := first
	again.AttemptID, again.SubmittedAt = uuid.New(), time.Now().UTC().Truncate(time.Microsecond)
	f.publish(t, again)
	other := f.event(t, uuid.New(), 2, nil)
	f.publish(t, other)

	reg := f.start(t, worker.Config{BatchSize: 1, StatementTimeout: 200 * time.Millisecond,
		MaxBatchHold: time.Second, MaxBackoff: 300 * time.Millisecond})
	waitFor(t, 15*time.Second, "another batch to be stored while one is stuck on a lock", func() bool {
		return f.count(t, `SELECT count(*) FROM attempts WHERE id = $1`, other.AttemptID) == 1
	})
	if got := labeled(t, reg, "quizstream_worker_batches_handed_back_total", "reason", "hold"); got < 1 {
		t.Fatalf("batches handed back for their hold: %v, want at least 1", got)
	}
	if n := f.count(t, `SELECT count(*) FROM attempts WHERE id = $1`, again.AttemptID); n != 0 {
		t.Fatal("the stuck attempt was stored through a lock")
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the stuck batch to be stored once the lock is gone", func() bool {
		return f.count(t, `SELECT count(*) FROM attempts WHERE id = $1`, again.AttemptID) == 1
	})
}

// labeled returns the value of the counter name whose label has value
// (any, when label is ""), or 0.
func labeled(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
