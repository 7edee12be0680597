package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

type fixture struct {
	st  *store.Store
	db  *pgxpool.Pool
	js  jetstream.JetStream
	log *eventlog.Log
	dl  *streams.DeadLetters
	cfg streams.StreamConfig
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, dbURL := storetest.Open(t)
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := streams.StreamConfig{AckWait: 5 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	lg, err := eventlog.NewLog(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := streams.EnsureDeadLetters(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, db: storetest.DB(t, dbURL), js: js, log: lg, dl: dl, cfg: cfg}
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
	w, err := worker.New(cons, f.st, f.dl, worker.Config{BatchSize: 8, MaxWait: 50 * time.Millisecond, AckWait: f.cfg.AckWait, Registerer: reg,
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
	if err := f.db.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Each kind of message that can never be stored is isolated from its
// batch, copied to the dead-letter stream with its reason and original
// sequence, stored as a failed tombstone when it decodes, and terminated;
// every good message around it is stored.
func TestPoisonIsDeadLettered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	student := uuid.New()
	good := 0
	type poison struct {
		seq     uint64
		reason  string
		attempt uuid.UUID // set when it decodes: a tombstone is expected
	}
	var poisons []poison
	publishRaw := func(subject string, data []byte) uint64 {
		ack, err := f.js.Publish(t.Context(), subject, data)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	for i := range 24 {
		switch i {
		case 3:
			seq := publishRaw(events.AttemptSubject(student, uuid.New()), []byte("{garbage"))
			poisons = append(poisons, poison{seq, "undecodable", uuid.Nil})
		case 8:
			e := f.event(t, student, 1, nil)
			data, _ := events.Encode(e)
			// An unknown older version (a newer one is not poison: TestNewerSchemaIsHandedBack).
			data = []byte(strings.Replace(string(data), `"schema":1`, `"schema":0`, 1))
			poisons = append(poisons, poison{publishRaw(e.Subject(), data), "schema version 0", uuid.Nil})
		case 13:
			e := f.event(t, student, 1, nil)
			data, _ := events.Encode(e)
			seq := publishRaw(events.AttemptSubject(uuid.New(), e.AttemptID), data) // someone else's subject
			poisons = append(poisons, poison{seq, "does not match", uuid.Nil})
		case 17: // decodes, but PostgreSQL refuses it: jsonb cannot hold \u0000
			e := f.event(t, student, 4, []events.Answer{{QuestionID: "q\x00", ChoiceID: "c"}})
			pub, err := f.log.PublishAttempt(t.Context(), e)
			if err != nil {
				t.Fatal(err)
			}
			poisons = append(poisons, poison{pub.Seq, "unsupported Unicode escape", e.AttemptID})
		default:
			f.publish(t, f.event(t, student, i%10, []events.Answer{{QuestionID: "q", ChoiceID: "c"}}))
			good++
		}
	}
	reg := prometheus.NewRegistry()
	f.run(t, reg)

	if n := f.count(t, `SELECT count(*) FROM attempts WHERE status = 'recorded'`); n != good {
		t.Fatalf("stored %d attempts, want the %d good ones", n, good)
	}
	if n := f.count(t, `SELECT coalesce(sum(attempts), 0) FROM progress WHERE student_id = $1`, student); n != good {
		t.Fatalf("progress counts %d attempts, want %d (tombstones are not attempts)", n, good)
	}
	letters, err := f.dl.List(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != len(poisons) {
		t.Fatalf("dead-letter stream holds %d messages, want %d", len(letters), len(poisons))
	}
	for i, p := range poisons {
		dl := letters[i]
		if dl.OriginalSeq != p.seq || !strings.Contains(dl.Reason, p.reason) || dl.OriginalSubject == "" || len(dl.Data) == 0 {
			t.Errorf("dead letter %d: %+v, want original seq %d and a reason containing %q", i, dl, p.seq, p.reason)
		}
		if p.attempt != uuid.Nil {
			if n := f.count(t, `SELECT count(*) FROM attempts WHERE id = $1 AND status = 'failed'`, p.attempt); n != 1 {
				t.Errorf("no failed tombstone for poison attempt %s", p.attempt)
			}
		}
	}
	if got := counter(t, reg, "quizstream_worker_messages_total", "poison"); got != float64(len(poisons)) {
		t.Fatalf("poison counter = %v, want %d", got, len(poisons))
	}
}

// An attempt refused by a constraint is dead-lettered; after the operator
// fixes the cause, a redrive stores it: its tombstone becomes recorded and
// progress counts it, once.
func TestRedriveAfterFix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.db.Exec(t.Context(), `ALTER TABLE attempts ADD CONSTRAINT low_scores CHECK (status = 'failed' OR score < 5)`); err != nil {
		t.Fatal(err)
	}
	student := uuid.New()
	refused := f.event(t, student, 7, nil)
	f.publish(t, refused)
	f.publish(t, f.event(t, student, 2, nil))
	f.run(t, nil)
	if n := f.count(t, `SELECT count(*) FROM attempts WHERE id = $1 AND status = 'failed'`, refused.AttemptID); n != 1 {
		t.Fatal("the refused attempt has no failed tombstone")
	}
	letters, err := f.dl.List(t.Context(), 0, 10)
	if err != nil || len(letters) != 1 || !strings.Contains(letters[0].Reason, "low_scores") {
		t.Fatalf("dead letters: %+v, %v", letters, err)
	}

	if _, err := f.db.Exec(t.Context(), `ALTER TABLE attempts DROP CONSTRAINT low_scores`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dl.Redrive(t.Context(), letters[0].Seq); err != nil {
		t.Fatal(err)
	}
	f.run(t, nil)
	if n := f.count(t, `SELECT count(*) FROM attempts WHERE id = $1 AND status = 'recorded' AND score = 7`, refused.AttemptID); n != 1 {
		t.Fatal("the redriven attempt is not recorded")
	}
	if n := f.count(t, `SELECT attempts FROM progress WHERE student_id = $1 AND quiz_id = $2`, student, refused.QuizID); n != 1 {
		t.Fatalf("progress counts the redriven attempt %d times, want 1", n)
	}
	if n, err := f.dl.Count(t.Context()); err != nil || n != 0 {
		t.Fatalf("dead letters left after the redrive: %d, %v", n, err)
	}
	// Redriving is not a way to store an attempt twice.
	if _, err := f.dl.Redrive(t.Context(), letters[0].Seq); !errors.Is(err, streams.ErrNoDeadLetter) {
		t.Fatalf("second redrive: %v, want ErrNoDeadLetter", err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
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
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
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
	if err := f.db.QueryRow(t.Context(), checksum).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := f.js.DeleteConsumer(t.Context(), f.cfg.Name, "attempt-writer"); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.EnsureConsumer(t.Context(), f.js, f.cfg); err != nil {
		t.Fatal(err)
	}
	f.run(t, nil)
	if err := f.db.QueryRow(t.Context(), checksum).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM attempts`); n != 30 {
		t.Fatalf("stored %d attempts, want 30", n)
	}
	if before != after {
		t.Fatal("delivering every message again changed the attempts or progress rows")
	}
}
