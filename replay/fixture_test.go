package replay_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// A replay starts no goroutine of its own; the reader's and the store's
// must be gone when Run returns and the fixtures close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is a private installation (apptest.Stack: a database and a
// JetStream server holding the attempts stream), its parts under short
// names.
type fixture struct {
	s       *apptest.Stack
	st      *store.Store
	dbURL   string
	db      *pgxpool.Pool // the test's own, for arranging and counting rows
	js      jetstream.JetStream
	stream  streams.StreamConfig
	log     *eventlog.Log
	quizzes []store.Quiz
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := apptest.New(t, streams.StreamConfig{})
	return &fixture{s: s, st: s.Store, dbURL: s.DBURL, db: s.DB, js: s.JS, stream: s.Stream, log: s.Log, quizzes: s.Quizzes}
}

// config returns a replay of the fixture's stream into its database.
func (f *fixture) config(t *testing.T, mode replay.Mode) replay.Config {
	return replay.Config{Store: f.st, JetStream: f.js, Stream: f.stream, Mode: mode, Logger: apptest.Logger(t)}
}

// run runs a replay that must succeed.
func (f *fixture) run(t *testing.T, cfg replay.Config) replay.Result {
	t.Helper()
	res, err := replay.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("replay %s: %v (result %+v)", cfg.Mode, err, res)
	}
	return res
}

// counts is the figures of a Result that a test states in full.
type counts struct {
	Read, Stored, AlreadyPresent, Poison, Counted, NotCounted, FromTable int64
}

func countsOf(r replay.Result) counts {
	return counts{r.Read, r.Stored, r.AlreadyPresent, r.Poison, r.Counted, r.NotCounted, r.FromTable}
}

func wantCounts(t *testing.T, what string, res replay.Result, want counts) {
	t.Helper()
	if got := countsOf(res); got != want {
		t.Errorf("%s: %+v, want %+v", what, got, want)
	}
}

// event is an attempt of student at the quiz at index quiz, with right
// answers right.
func (f *fixture) event(student uuid.UUID, quiz, right int) events.AttemptSubmitted {
	q := f.quizzes[quiz%len(f.quizzes)]
	answers := make([]events.Answer, 0, len(q.Questions))
	for _, a := range apptest.AnswersFor(q, right) {
		answers = append(answers, events.Answer(a))
	}
	return events.AttemptSubmitted{
		AttemptID: uuid.New(), StudentID: student, QuizID: q.ID, CourseID: q.CourseID,
		Answers: answers, AnswersHash: events.HashAnswers(q.ID, answers),
		Score: min(right, len(q.Questions)), MaxScore: len(q.Questions), SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

func (f *fixture) publish(t testing.TB, e events.AttemptSubmitted) uint64 {
	t.Helper()
	p, err := f.log.PublishAttempt(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	return p.Seq
}

func (f *fixture) publishRaw(t testing.TB, subject string, data []byte) uint64 {
	t.Helper()
	ack, err := f.js.Publish(t.Context(), subject, data)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// poisonWithNUL is an event that decodes but that PostgreSQL refuses
// (jsonb cannot hold \u0000): it is stored as a failed tombstone.
func (f *fixture) poisonWithNUL(student uuid.UUID) (events.AttemptSubmitted, []byte) {
	e := f.event(student, 3, 0)
	e.Answers = []events.Answer{{QuestionID: "q\x00", ChoiceID: "c"}}
	data, _ := events.Encode(e)
	return e, data
}

func (f *fixture) int(t testing.TB, sql string, args ...any) int {
	t.Helper()
	return storetest.Int(t, f.db, sql, args...)
}

func (f *fixture) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// checksums returns a digest of every attempt row (all columns but
// recorded_at, or all of them with withRecordedAt) and of every progress
// row, with the row counts.
func (f *fixture) checksums(t testing.TB, withRecordedAt bool) (attempts, progress string) {
	t.Helper()
	cols := `id, student_id, quiz_id, course_id, idempotency_key, answers, answers_hash, score, max_score, status, submitted_at, stream_seq`
	if withRecordedAt {
		cols += `, recorded_at`
	}
	err := f.db.QueryRow(t.Context(), `SELECT count(*) || ':' || coalesce(md5(string_agg(row(`+cols+`)::text, ',' ORDER BY id)), '') FROM attempts`).Scan(&attempts)
	if err == nil {
		err = f.db.QueryRow(t.Context(), `SELECT count(*) || ':' || coalesce(md5(string_agg(row(student_id, quiz_id, course_id, attempts, best_score)::text, ',' ORDER BY student_id, quiz_id)), '') FROM progress`).Scan(&progress)
	}
	if err != nil {
		t.Fatal(err)
	}
	return attempts, progress
}

// storedIDs returns the ids of the attempts stored with status, in order.
func (f *fixture) storedIDs(t testing.TB, status string) []uuid.UUID {
	t.Helper()
	rows, _ := f.db.Query(t.Context(), `SELECT id FROM attempts WHERE status = $1 ORDER BY id`, status)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func sortedIDs(evs ...[]events.AttemptSubmitted) []uuid.UUID {
	var ids []uuid.UUID
	for _, es := range evs {
		for _, e := range es {
			ids = append(ids, e.AttemptID)
		}
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// startWorker runs a worker (app's wiring, as apptest starts it) on the
// stream's durable consumer, with the dead-letter stream.
func (f *fixture) startWorker(t *testing.T, cfg worker.Config) *apptest.Instance {
	t.Helper()
	return f.s.StartWorker(t, cfg)
}

// waitDrained waits until the workers have acknowledged every message.
func (f *fixture) waitDrained(t *testing.T, timeout time.Duration) {
	t.Helper()
	f.s.WaitDrained(t, timeout)
}

// waitFor polls cond until it holds or the deadline passes, then fails t.
var waitFor = apptest.WaitFor

// counter returns the value of the counter named name in reg.
func counter(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// blocked returns the pid of a backend of the database waiting for a lock
// in a statement matching query, or 0.
func (f *fixture) blocked(t testing.TB, query string) int {
	t.Helper()
	var pid int
	err := f.db.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
		AND wait_event_type = 'Lock' AND query LIKE $1 LIMIT 1`, query).Scan(&pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// lock takes lockSQL in a transaction of a connection of its own and
// returns the function that ends it.
func (f *fixture) lock(t testing.TB, lockSQL string, args ...any) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err == nil {
		_, err = tx.Exec(t.Context(), lockSQL, args...)
	}
	if err != nil {
		conn.Close(context.Background())
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback(context.Background())
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// progressDrift counts the progress rows that differ from the aggregate of
// the recorded attempts.
var progressDrift = storetest.ProgressDriftSQL("progress")
