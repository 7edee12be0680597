package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/worker"
)

// replayRun runs `quizstream replay args...` in process against the stack
// and returns what it printed and its error.
func (s *stack) replayRun(ctx context.Context, logLevel string, args ...string) (string, string, error) {
	env := map[string]string{"DATABASE_URL": s.DBURL, "NATS_URL": s.NATSURL, "LOG_LEVEL": logLevel}
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"replay"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// replayCount returns the number on the summary line labelled label.
func replayCount(t testing.TB, out, label string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(label) + `\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in the replay summary:\n%s", label, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// replayWant checks the counts of a replay summary.
func replayWant(t testing.TB, out string, want map[string]int) {
	t.Helper()
	for label, n := range want {
		if got := replayCount(t, out, label); got != n {
			t.Errorf("replay %s = %d, want %d; summary:\n%s", label, got, n, out)
		}
	}
}

// replayChecksums returns a digest of every attempt row (all columns but
// recorded_at, or all of them with withRecordedAt) and of every progress
// row, with the row counts.
func (s *stack) replayChecksums(t testing.TB, withRecordedAt bool) (attempts, progress string) {
	t.Helper()
	cols := `id, student_id, quiz_id, course_id, idempotency_key, answers, answers_hash, score, max_score, status, submitted_at, stream_seq`
	if withRecordedAt {
		cols += `, recorded_at`
	}
	err := s.Store.Pool().QueryRow(t.Context(), `SELECT count(*) || ':' || coalesce(md5(string_agg(row(`+cols+`)::text, ',' ORDER BY id)), '') FROM attempts`).Scan(&attempts)
	if err == nil {
		err = s.Store.Pool().QueryRow(t.Context(), `SELECT count(*) || ':' || coalesce(md5(string_agg(row(student_id, quiz_id, course_id, attempts, best_score)::text, ',' ORDER BY student_id, quiz_id)), '') FROM progress`).Scan(&progress)
	}
	if err != nil {
		t.Fatal(err)
	}
	return attempts, progress
}

func (s *stack) replayQueryInt(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Store.Pool().QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// replayEvent is an attempt of student at the quiz at index quiz, with
// right answers right.
func (s *stack) replayEvent(student uuid.UUID, quiz, right int) events.AttemptSubmitted {
	q := s.Quizzes[quiz%len(s.Quizzes)]
	answers := answersFor(q, right)
	return events.AttemptSubmitted{
		AttemptID: uuid.New(), StudentID: student, QuizID: q.ID, CourseID: q.CourseID,
		Answers: answers, AnswersHash: events.HashAnswers(q.ID, answers),
		Score: right, MaxScore: len(q.Questions), SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

func (s *stack) replayPublish(t testing.TB, e events.AttemptSubmitted) uint64 {
	t.Helper()
	p, err := s.Log.PublishAttempt(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	return p.Seq
}

func (s *stack) replayPublishRaw(t testing.TB, subject string, data []byte) uint64 {
	t.Helper()
	ack, err := s.JS.Publish(t.Context(), subject, data)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// replayPoisonWithNUL is an event that decodes but that PostgreSQL refuses
// (jsonb cannot hold \u0000): a worker stores it as a failed tombstone.
func (s *stack) replayPoisonWithNUL(student uuid.UUID) (events.AttemptSubmitted, []byte) {
	e := s.replayEvent(student, 3, 0)
	e.Answers = []events.Answer{{QuestionID: "q\x00", ChoiceID: "c"}}
	data, _ := events.Encode(e)
	return e, data
}

// replayStoredIDs returns the ids of the attempts stored with status.
func (s *stack) replayStoredIDs(t testing.TB, status string) []uuid.UUID {
	t.Helper()
	rows, _ := s.Store.Pool().Query(t.Context(), `SELECT id FROM attempts WHERE status = $1 ORDER BY id`, status)
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

// The database is wiped and restored from the stream: every attempt row
// (poison tombstones included) and every progress row come back
// identical. A second replay over the live database changes nothing.
func TestReplayRestore(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	inst := s.startAPI(t, api.Config{})

	// Students submit through the API, retrying some attempts with the same key.
	accepted := 0
	for i := range 4 {
		c := signup(t, inst.URL, fmt.Sprintf("replay-restore-%d@example.com", i))
		for j := range 30 {
			q := s.Quizzes[(i*7+j)%8]
			key := fmt.Sprintf("k-%d", j)
			for range 1 + j%3 {
				status, _, err := c.submit(q.ID.String(), key, answersFor(q, (i+j)%(len(q.Questions)+1)))
				if err != nil || status != http.StatusAccepted {
					t.Fatalf("submit: status %d, %v", status, err)
				}
			}
			accepted++
		}
	}
	// A bulk of events as the API publishes them, to measure the replay rate.
	const bulk = 3000
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			student := uuid.New()
			for i := g; i < bulk; i += 16 {
				if _, err := s.Log.PublishAttempt(t.Context(), s.replayEvent(student, i, i%11)); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d bulk publishes failed", failed.Load())
	}
	accepted += bulk
	// Two poison messages: one PostgreSQL refuses (a failed tombstone is
	// stored), one that does not decode (nothing can be stored).
	nul, data := s.replayPoisonWithNUL(uuid.New())
	s.replayPublishRaw(t, nul.Subject(), data)
	s.replayPublishRaw(t, events.AttemptSubject(uuid.New(), uuid.New()), []byte("{garbage"))

	stop := s.startWorker(t, worker.Config{})
	s.waitDrained(t, 60*time.Second)
	stop()
	messages := int(eventstest.StreamMessages(t, s.JS, s.Stream.Name))
	if messages != accepted+2 {
		t.Fatalf("stream holds %d messages, want %d attempts and 2 poison", messages, accepted)
	}
	if n := s.replayQueryInt(t, `SELECT count(*) FROM attempts WHERE status = 'recorded'`); n != accepted {
		t.Fatalf("the worker stored %d attempts, want %d", n, accepted)
	}
	if n := s.replayQueryInt(t, `SELECT count(*) FROM attempts WHERE status = 'failed' AND id = $1`, nul.AttemptID); n != 1 {
		t.Fatalf("no failed tombstone for the poison attempt")
	}
	dl, err := events.EnsureDeadLetters(t.Context(), s.JS, s.Stream)
	if err != nil {
		t.Fatal(err)
	}
	letters := func() uint64 {
		n, err := dl.Count(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := letters(); n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}
	wantAttempts, wantProgress := s.replayChecksums(t, false)

	if _, err := s.Store.Pool().Exec(t.Context(), `DELETE FROM attempts; DELETE FROM progress`); err != nil {
		t.Fatal(err)
	}
	if a, p := s.replayChecksums(t, false); a == wantAttempts || p == wantProgress {
		t.Fatal("the tables still hold their rows after DELETE")
	}
	out := s.runCommand(t, "replay")
	t.Logf("restore over an empty database:\n%s", out)
	replayWant(t, out, map[string]int{"read": messages, "stored": accepted, "already present": 0, "poison": 2})
	gotAttempts, gotProgress := s.replayChecksums(t, false)
	if gotAttempts != wantAttempts {
		t.Errorf("attempts after the restore: %s, want %s", gotAttempts, wantAttempts)
	}
	if gotProgress != wantProgress {
		t.Errorf("progress after the restore: %s, want %s", gotProgress, wantProgress)
	}
	if n := letters(); n != 2 {
		t.Errorf("%d dead letters after the restore, want the same 2", n)
	}

	// Again, over the live database: nothing changes, recorded_at included.
	beforeAttempts, beforeProgress := s.replayChecksums(t, true)
	out, logs, err := s.replayRun(t.Context(), "info", "--batch-size", "300")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, logs)
	}
	replayWant(t, out, map[string]int{"read": messages, "stored": 0, "already present": accepted, "poison": 2})
	if a, p := s.replayChecksums(t, true); a != beforeAttempts || p != beforeProgress {
		t.Errorf("a second replay changed the database: attempts %s -> %s, progress %s -> %s", beforeAttempts, a, beforeProgress, p)
	}
	// stdout is not a terminal: no bar, and the end is logged.
	if !strings.Contains(logs, `msg="replay: done"`) || !strings.Contains(logs, "stored=0") || strings.Contains(out, "\r") {
		t.Errorf("want a final log line and no progress bar; stdout:\n%s\nstderr:\n%s", out, logs)
	}
}

// replayLogBuffer keeps what a logger wrote, and shows it in the test log.
type replayLogBuffer struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *replayLogBuffer) Write(p []byte) (int, error) {
	b.t.Log(strings.TrimRight(string(p), "\n"))
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *replayLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var progressDiffSQL = storetest.ProgressDriftSQL("progress")

// replayDiffLine parses "progress: N live rows, M rebuilt rows: A changed,
// B missing from live, C only in live".
var replayDiffLine = regexp.MustCompile(`progress: (\d+) live rows, (\d+) rebuilt rows: (\d+) changed, (\d+) missing from live, (\d+) only in live`)

// A corrupted progress table is rebuilt from the stream: without --swap
// the differences are printed and nothing changes; with --swap, while a
// worker keeps storing attempts (one of its batches waiting on the swap's
// lock), the live table ends equal to the aggregate of recorded attempts.
func TestReplayRebuildProgress(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	workerLog := &replayLogBuffer{t: t}
	s.startWorker(t, worker.Config{BatchSize: 20, MaxWait: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(workerLog, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	students := make([]uuid.UUID, 20)
	for i := range students {
		students[i] = uuid.New()
	}
	for i := range 600 {
		s.replayPublish(t, s.replayEvent(students[i%20], i%6, i%11))
	}
	// An event whose attempt is stored as a failed tombstone: not counted.
	nul, data := s.replayPoisonWithNUL(students[0])
	s.replayPublishRaw(t, nul.Subject(), data)
	s.waitDrained(t, 30*time.Second)
	if n := s.replayQueryInt(t, `SELECT count(*) FROM attempts WHERE status = 'failed'`); n != 1 {
		t.Fatalf("%d failed tombstones, want 1", n)
	}
	if n := s.replayQueryInt(t, progressDiffSQL); n != 0 {
		t.Fatalf("progress differs from the attempts in %d rows before the test corrupts it", n)
	}
	// Corrupt it: 4 rows counting too many, 3 with a wrong best score, 3
	// rows deleted, 2 rows of attempts that do not exist.
	_, err := s.Store.Pool().Exec(t.Context(), `
		WITH r AS (SELECT student_id, quiz_id, row_number() OVER (ORDER BY student_id, quiz_id) AS n FROM progress)
		UPDATE progress p SET attempts = attempts + 2 FROM r WHERE (p.student_id, p.quiz_id) = (r.student_id, r.quiz_id) AND r.n <= 4;
		WITH r AS (SELECT student_id, quiz_id, row_number() OVER (ORDER BY student_id, quiz_id) AS n FROM progress)
		UPDATE progress p SET best_score = best_score + 100 FROM r WHERE (p.student_id, p.quiz_id) = (r.student_id, r.quiz_id) AND r.n BETWEEN 5 AND 7;
		WITH r AS (SELECT student_id, quiz_id, row_number() OVER (ORDER BY student_id, quiz_id) AS n FROM progress)
		DELETE FROM progress p USING r WHERE (p.student_id, p.quiz_id) = (r.student_id, r.quiz_id) AND r.n BETWEEN 8 AND 10;
		INSERT INTO progress (student_id, quiz_id, course_id, attempts, best_score)
		SELECT gen_random_uuid(), quiz_id, course_id, 5, 5 FROM progress LIMIT 2;`)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.replayQueryInt(t, progressDiffSQL); n != 12 {
		t.Fatalf("the corruption left %d rows differing, want 12", n)
	}
	shadowExists := func() bool {
		return s.replayQueryInt(t, `SELECT count(*) FROM pg_class WHERE relname IN ('progress_rebuild', 'progress_rebuild_counted', 'progress_old')`) > 0
	}

	// Without --swap: the differences, and the live table untouched.
	_, before := s.replayChecksums(t, false)
	out := s.runCommand(t, "replay", "--rebuild", "progress", "--diff-rows", "5")
	t.Logf("rebuild without --swap:\n%s", out)
	replayWant(t, out, map[string]int{"read": 601, "counted": 600, "not counted": 1, "poison": 0, "from table": 0})
	m := replayDiffLine.FindStringSubmatch(out)
	if m == nil || m[3] != "7" || m[4] != "3" || m[5] != "2" {
		t.Fatalf("want 7 changed, 3 missing from live, 2 only in live, in:\n%s", out)
	}
	if n := strings.Count(out, "\n  changed ") + strings.Count(out, "\n  missing ") + strings.Count(out, "\n  extra "); n != 5 {
		t.Errorf("want the first 5 differing rows listed, got %d", n)
	}
	if !strings.Contains(out, "... and 7 more") || !strings.Contains(out, "live progress untouched") {
		t.Errorf("want the count of rows not listed and the live table untouched, in:\n%s", out)
	}
	if _, after := s.replayChecksums(t, false); after != before {
		t.Fatal("a rebuild without --swap changed the live progress table")
	}
	if shadowExists() {
		t.Fatal("a rebuild without --swap left its tables behind")
	}
	// --keep-shadow keeps it, equal to the aggregate of the attempts.
	s.runCommand(t, "replay", "--rebuild", "progress", "--keep-shadow")
	if n := s.replayQueryInt(t, storetest.ProgressDriftSQL("progress_rebuild")); n != 0 {
		t.Fatalf("the kept shadow differs from the aggregate of attempts in %d rows", n)
	}

	// With --swap, under load: a publisher keeps going and the worker
	// keeps storing, before, during and after the swap.
	var loadWG sync.WaitGroup
	var published atomic.Int64
	var loadStopped atomic.Bool
	stopLoad := func() { loadStopped.Store(true); loadWG.Wait() }
	loadWG.Add(1)
	go func() {
		defer loadWG.Done()
		for i := 0; !loadStopped.Load(); i++ {
			student := students[rand.IntN(len(students))]
			if i%5 == 0 {
				student = uuid.New()
			}
			if _, err := s.Log.PublishAttempt(context.Background(), s.replayEvent(student, rand.IntN(6), rand.IntN(11))); err != nil {
				t.Errorf("load: %v", err)
				return
			}
			published.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer stopLoad()
	stored0 := s.countAttempts(t)
	waitFor(t, 10*time.Second, "the worker to store some of the load", func() bool { return s.countAttempts(t) >= stored0+50 })

	// The test holds a lock on progress that the swap's ACCESS EXCLUSIVE
	// lock must wait for; the worker's next batch then queues behind the
	// swap, on the old table.
	conn, err := pgx.Connect(t.Context(), s.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	hold, err := conn.Begin(t.Context())
	if err == nil {
		_, err = hold.Exec(t.Context(), `LOCK TABLE progress IN ACCESS SHARE MODE`)
	}
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out, logs string
		err       error
	}
	done := make(chan result, 1)
	go func() {
		out, logs, err := s.replayRun(t.Context(), "warn", "--rebuild", "progress", "--swap", "--batch-size", "100")
		done <- result{out, logs, err}
	}()
	waiting := func(query string) func() bool {
		return func() bool {
			return s.replayQueryInt(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND query LIKE $1`, query) > 0
		}
	}
	waitFor(t, 30*time.Second, "the swap to wait for its lock", waiting("LOCK TABLE progress%"))
	waitFor(t, 10*time.Second, "a worker batch to queue behind the swap", waiting("%INSERT INTO attempts%"))
	if err := hold.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the replay did not end after the lock was released")
	}
	t.Logf("rebuild with --swap:\n%s", res.out)
	if res.err != nil {
		t.Fatalf("replay --rebuild progress --swap: %v\n%s", res.err, res.logs)
	}
	if !strings.Contains(res.out, "progress swapped") {
		t.Fatalf("no swap reported:\n%s", res.out)
	}
	if m := replayDiffLine.FindStringSubmatch(res.out); m == nil {
		t.Errorf("the swap did not print the differences first:\n%s", res.out)
	} else {
		changed, _ := strconv.Atoi(m[3])
		missing, _ := strconv.Atoi(m[4])
		// A deleted row may have been recreated by the worker since, with
		// a count too low: missing then becomes changed.
		if changed+missing != 10 || m[5] != "2" {
			t.Errorf("want the 12 corrupted rows reported (10 changed or missing, 2 only in live), got %s", m[0])
		}
	}
	if n := replayCount(t, res.out, "from table"); n == 0 {
		t.Errorf("no attempt was counted from the table, so the load did not run during the rebuild")
	}

	// The worker goes on writing, into the new table.
	storedAtSwap := s.countAttempts(t)
	waitFor(t, 10*time.Second, "the worker to store more after the swap", func() bool { return s.countAttempts(t) >= storedAtSwap+50 })
	stopLoad()
	s.waitDrained(t, 30*time.Second)
	if n := s.countAttempts(t); n != 601+int(published.Load()) {
		t.Fatalf("%d attempts stored, want %d and the tombstone", n, 600+published.Load())
	}
	if n := s.replayQueryInt(t, progressDiffSQL); n != 0 {
		t.Fatalf("after the swap and the load, progress differs from the aggregate of recorded attempts in %d rows", n)
	}
	if strings.Contains(workerLog.String(), "failed, retrying") {
		t.Error("a worker write failed around the swap: a statement that waited on the old table must run on the new one")
	}
	if shadowExists() {
		t.Error("the swap left a rebuild table or the old table behind")
	}
	if n := s.replayQueryInt(t, `SELECT count(*) FROM pg_indexes WHERE tablename = 'progress' AND indexname = 'progress_pkey'`); n != 1 {
		t.Error("the new progress table's primary key is not named progress_pkey")
	}
}

// A dry run decodes and validates every event (PostgreSQL's refusals
// included) and writes nothing; --since, --until and --from-seq select
// exactly their events.
func TestReplayDryRunAndRanges(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	student := uuid.New()
	phase := func(n int) []events.AttemptSubmitted {
		var evs []events.AttemptSubmitted
		for i := range n {
			e := s.replayEvent(student, i, i%11)
			s.replayPublish(t, e)
			evs = append(evs, e)
		}
		time.Sleep(5 * time.Millisecond) // phases apart in time, not only in sequence
		return evs
	}
	// seq 1-10, 11-19, then an undecodable message at 20
	a := phase(10)
	b := phase(9)
	s.replayPublishRaw(t, events.AttemptSubject(student, uuid.New()), []byte("{garbage"))
	time.Sleep(5 * time.Millisecond)
	c := phase(9) // seq 21-29
	nul, data := s.replayPoisonWithNUL(student)
	s.replayPublishRaw(t, nul.Subject(), data) // seq 30

	stream, err := s.JS.Stream(t.Context(), s.Stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(seq uint64) string {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		return m.Time.UTC().Format(time.RFC3339Nano)
	}
	empty := func() {
		t.Helper()
		if n := s.countAttempts(t); n != 0 {
			t.Fatalf("%d attempts stored", n)
		}
		if n := s.replayQueryInt(t, `SELECT count(*) FROM progress`); n != 0 {
			t.Fatalf("%d progress rows stored", n)
		}
	}

	// A dry run over the empty database.
	out := s.runCommand(t, "replay", "--dry-run", "--batch-size", "7")
	replayWant(t, out, map[string]int{"read": 30, "stored": 28, "already present": 0, "poison": 2})
	empty()
	if !strings.Contains(out, "dry run (nothing written)") {
		t.Errorf("the summary does not say it was a dry run:\n%s", out)
	}

	// --until: phase a only.
	out = s.runCommand(t, "replay", "--until", stamp(10))
	replayWant(t, out, map[string]int{"read": 10, "stored": 10, "poison": 0})
	if got, want := s.replayStoredIDs(t, "recorded"), sortedIDs(a); !slices.Equal(got, want) {
		t.Fatalf("--until stored %d attempts, want phase a's %d", len(got), len(want))
	}

	// A dry run over a partly restored database writes nothing either.
	beforeAttempts, beforeProgress := s.replayChecksums(t, true)
	out = s.runCommand(t, "replay", "--dry-run")
	replayWant(t, out, map[string]int{"read": 30, "stored": 18, "already present": 10, "poison": 2})
	if a, p := s.replayChecksums(t, true); a != beforeAttempts || p != beforeProgress {
		t.Fatal("a dry run changed the database")
	}

	// --since and --until: phase b and the undecodable message after it.
	out = s.runCommand(t, "replay", "--since", stamp(11), "--until", stamp(20))
	replayWant(t, out, map[string]int{"read": 10, "stored": 9, "already present": 0, "poison": 1})
	if !strings.Contains(out, "stream seq 11 to 20") {
		t.Errorf("want seq 11 to 20 in:\n%s", out)
	}
	if got, want := s.replayStoredIDs(t, "recorded"), sortedIDs(a, b); !slices.Equal(got, want) {
		t.Fatalf("--since --until: %d attempts stored, want phases a and b's %d", len(got), len(want))
	}

	// --from-seq: phase c and the poison after it, stored as a tombstone.
	out = s.runCommand(t, "replay", "--from-seq", "21")
	replayWant(t, out, map[string]int{"read": 10, "stored": 9, "already present": 0, "poison": 1})
	if got, want := s.replayStoredIDs(t, "recorded"), sortedIDs(a, b, c); !slices.Equal(got, want) {
		t.Fatalf("--from-seq: %d attempts stored, want all %d", len(got), len(want))
	}
	if got := s.replayStoredIDs(t, "failed"); !slices.Equal(got, []uuid.UUID{nul.AttemptID}) {
		t.Fatalf("tombstones %v, want the poison attempt's", got)
	}

	// Ranges holding nothing.
	for _, args := range [][]string{
		{"--from-seq", "31"},
		{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
		{"--until", "2000-01-01T00:00:00Z"},
	} {
		out := s.runCommand(t, append([]string{"replay"}, args...)...)
		if replayCount(t, out, "read") != 0 || !strings.Contains(out, "no events in the range") {
			t.Errorf("replay %v:\n%s", args, out)
		}
	}
}

// Bad flags are refused, with a message naming the problem, before any
// connection is made.
func TestReplayFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from-seq", "0"}, "--from-seq must be at least 1"},
		{[]string{"--since", "yesterday"}, "not an RFC 3339 time"},
		{[]string{"--until", "2025-13-01T00:00:00Z"}, "not an RFC 3339 time"},
		{[]string{"--from-seq", "5", "--since", "2025-01-01T00:00:00Z"}, "exclusive"},
		{[]string{"--since", "2025-01-02T00:00:00Z", "--until", "2025-01-01T00:00:00Z"}, "is before --since"},
		{[]string{"--batch-size", "0"}, "--batch-size must be between"},
		{[]string{"--rebuild", "attempts"}, "the only projection that can be rebuilt is progress"},
		{[]string{"--swap"}, "--swap needs --rebuild progress"},
		{[]string{"--keep-shadow"}, "--keep-shadow needs --rebuild"},
		{[]string{"--rebuild", "progress", "--swap", "--keep-shadow"}, "exclusive"},
		{[]string{"--rebuild", "progress", "--dry-run"}, "exclusive"},
		{[]string{"--lock-timeout", "0s", "--rebuild", "progress", "--swap"}, "--lock-timeout must be positive"},
		{[]string{"now"}, "unexpected arguments"},
		{nil, "NATS_URL is required"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"replay"}, tc.args...), func(string) string { return "" }, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"replay", "--no-such-flag"}, func(string) string { return "" }, &stdout, &stderr); !errors.Is(err, errUsage) ||
		!strings.Contains(stderr.String(), "flag provided but not defined") || !strings.Contains(stderr.String(), "--rebuild progress") {
		t.Errorf("an unknown flag: %v\n%s", err, stderr.String())
	}
}

// A database connection lost in the middle of a restore is retried; an
// interrupted restore rolls its batch back and says where to resume.
func TestReplayOutageAndInterrupt(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	student := uuid.New()
	for i := range 40 {
		s.replayPublish(t, s.replayEvent(student, i, i%11))
	}
	// The test holds progress locked, so the replay's first batch blocks
	// inside its transaction.
	lock := func() (release func()) {
		conn, err := pgx.Connect(t.Context(), s.DBURL)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(t.Context())
		if err == nil {
			_, err = tx.Exec(t.Context(), `LOCK TABLE progress IN ACCESS EXCLUSIVE MODE`)
		}
		if err != nil {
			t.Fatal(err)
		}
		return func() {
			tx.Rollback(context.Background())
			conn.Close(context.Background())
		}
	}
	blockedInsert := func() (pid int) {
		err := s.Store.Pool().QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO attempts%'`).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	type result struct {
		out, logs string
		err       error
	}
	start := func(ctx context.Context) <-chan result {
		done := make(chan result, 1)
		go func() {
			out, logs, err := s.replayRun(ctx, "warn", "--batch-size", "40")
			done <- result{out, logs, err}
		}()
		return done
	}

	// The connection of the blocked batch is killed: the batch is retried
	// on a new connection, and the restore completes.
	release := lock()
	done := start(t.Context())
	var pid int
	waitFor(t, 20*time.Second, "the replay's batch to block", func() bool { pid = blockedInsert(); return pid != 0 })
	if _, err := s.Store.Pool().Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the batch to be retried on another connection", func() bool {
		p := blockedInsert()
		return p != 0 && p != pid
	})
	release()
	res := <-done
	if res.err != nil {
		t.Fatalf("replay after a lost connection: %v\n%s", res.err, res.logs)
	}
	replayWant(t, res.out, map[string]int{"read": 40, "stored": 40, "poison": 0})
	if !strings.Contains(res.logs, "retrying") {
		t.Errorf("want the retry logged:\n%s", res.logs)
	}
	if n := s.replayQueryInt(t, progressDiffSQL); n != 0 {
		t.Fatalf("progress differs from the attempts in %d rows", n)
	}

	// Interrupted while its batch is blocked: it returns at once, says
	// where to resume, and leaves nothing behind.
	if _, err := s.Store.Pool().Exec(t.Context(), `DELETE FROM attempts; DELETE FROM progress`); err != nil {
		t.Fatal(err)
	}
	release = lock()
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	done = start(ctx)
	waitFor(t, 20*time.Second, "the replay's batch to block", func() bool { return blockedInsert() != 0 })
	cancel()
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the replay did not stop within 10s of its interruption")
	}
	if res.err == nil || !strings.Contains(res.err.Error(), "interrupted") || !strings.Contains(res.err.Error(), "--from-seq 1 ") {
		t.Fatalf("interrupted replay: error %v, want one saying to resume with --from-seq 1\n%s", res.err, res.out)
	}
	release()
	empty := s.countAttempts(t) == 0 && s.replayQueryInt(t, `SELECT count(*) FROM progress`) == 0
	if !empty {
		t.Fatal("the interrupted batch left rows behind")
	}
}
