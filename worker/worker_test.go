package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/worker"
)

type fixture struct {
	st  *store.Store
	js  jetstream.JetStream
	log *events.Log
	cfg events.StreamConfig
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, _ := storetest.Open(t)
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := events.StreamConfig{AckWait: 5 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	lg, err := events.NewLog(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, js: js, log: lg, cfg: cfg}
}

func (f *fixture) event(t *testing.T, student uuid.UUID, score int, answers []events.Answer) events.AttemptSubmitted {
	quiz := uuid.New()
	return events.AttemptSubmitted{
		AttemptID: uuid.New(), StudentID: student, QuizID: quiz, CourseID: uuid.New(),
		Answers: answers, AnswersHash: events.HashAnswers(quiz, answers),
		Score: score, MaxScore: 10, SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

func (f *fixture) publish(t *testing.T, e events.AttemptSubmitted) {
	t.Helper()
	if _, err := f.log.PublishAttempt(t.Context(), e); err != nil {
		t.Fatal(err)
	}
}

// run runs one worker until every message in the stream is settled.
func (f *fixture) run(t *testing.T, reg prometheus.Registerer) {
	t.Helper()
	cons, err := f.log.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(cons, f.st, worker.Config{BatchSize: 8, MaxWait: 50 * time.Millisecond, AckWait: f.cfg.AckWait, Registerer: reg,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	stream, err := f.js.Stream(t.Context(), f.cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err1 := stream.Info(t.Context())
		floor, err2 := f.log.AckFloor(t.Context())
		if err1 == nil && err2 == nil && floor >= info.State.LastSeq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream not drained: ack floor %d, last seq %d", floor, info.State.LastSeq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.st.Pool().QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A message that can never be stored is isolated from its batch and
// terminated; every good message around it is stored.
func TestPoisonIsIsolated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	student := uuid.New()
	good := 0
	for i := range 20 {
		switch i {
		case 5: // not an event at all
			if _, err := f.js.Publish(t.Context(), events.AttemptSubject(student, uuid.New()), []byte("{garbage")); err != nil {
				t.Fatal(err)
			}
		case 11: // decodes, but PostgreSQL refuses it: jsonb cannot hold \u0000
			f.publish(t, f.event(t, student, 1, []events.Answer{{QuestionID: "q\x00", ChoiceID: "c"}}))
		default:
			f.publish(t, f.event(t, student, i%10, []events.Answer{{QuestionID: "q", ChoiceID: "c"}}))
			good++
		}
	}
	reg := prometheus.NewRegistry()
	f.run(t, reg)
	if n := f.count(t, `SELECT count(*) FROM attempts`); n != good {
		t.Fatalf("stored %d attempts, want the %d good ones", n, good)
	}
	if n := f.count(t, `SELECT coalesce(sum(attempts), 0) FROM progress WHERE student_id = $1`, student); n != good {
		t.Fatalf("progress counts %d attempts, want %d", n, good)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var poison float64
	for _, mf := range mfs {
		if mf.GetName() == "quizstream_worker_messages_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "poison" {
					poison = m.GetCounter().GetValue()
				}
			}
		}
	}
	if poison != 2 {
		t.Fatalf("poison counter = %v, want 2", poison)
	}
}

// Every message delivered again (the consumer reset, as after a lost ack
// or a replay) changes no row.
func TestRedeliveryChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	students := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for i := range 30 {
		f.publish(t, f.event(t, students[i%3], i%11, nil))
	}
	f.run(t, nil)
	checksum := `SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
		SELECT a::text AS x FROM attempts a UNION ALL SELECT p::text FROM progress p) t`
	var before, after string
	if err := f.st.Pool().QueryRow(t.Context(), checksum).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := f.js.DeleteConsumer(t.Context(), f.cfg.Name, "attempt-writer"); err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureConsumer(t.Context(), f.js, f.cfg); err != nil {
		t.Fatal(err)
	}
	f.run(t, nil)
	if err := f.st.Pool().QueryRow(t.Context(), checksum).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM attempts`); n != 30 {
		t.Fatalf("stored %d attempts, want 30", n)
	}
	if before != after {
		t.Fatal("delivering every message again changed the attempts or progress rows")
	}
}
