package main

// Fault tests: a worker cancelled or killed in the middle of a batch, and
// PostgreSQL unreachable under load. Each counts the rows PostgreSQL holds
// and compares them, one by one, with the 202 bodies clients were given.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

// TestWorkerCancelledMidBatch cancels an in-process worker while its batch
// transaction is blocked on a lock the test holds, so the batch is
// certainly fetched and certainly not committed at the moment of cancel.
func TestWorkerCancelledMidBatch(t *testing.T) {
	t.Parallel()

	// (a) The shutdown budget runs out while the batch is blocked: the
	// worker must roll back, hand every message back (Nak, not Ack) and
	// return; a fresh worker then stores everything exactly once.
	t.Run("abandons batch past ShutdownTimeout", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, events.StreamConfig{}) // AckWait 30s: only a Nak brings the batch back quickly
		a := s.startAPI(t, api.Config{})
		clients := faultSignup(t, a.URL, "cancel-a", 3)
		naks := faultCountNaks(t, s)
		l := newFaultLedger()

		release := faultLockProgress(t, s.DBURL)
		defer release()
		faultSubmitRound(t, s, clients, l, "a", 5)
		n := l.len()

		cancel, done := s.goWorker(t, worker.Config{ShutdownTimeout: 300 * time.Millisecond})
		faultWaitBlocked(t, s)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("worker: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("worker did not return within 10s of cancel with ShutdownTimeout 300ms")
		}
		// The lock is still held: nothing can have committed, and the
		// whole batch must have been handed back, none of it acked.
		if got := s.countAttempts(t); got != 0 {
			t.Fatalf("attempts stored while the batch was blocked = %d, want 0", got)
		}
		waitFor(t, 5*time.Second, fmt.Sprintf("%d Nak advisories", n), func() bool { return naks.Load() >= int64(n) })
		if got := naks.Load(); got != int64(n) {
			t.Errorf("Nak advisories = %d, want %d (one per message of the abandoned batch)", got, n)
		}
		if floor := faultAckFloor(t, s); floor != 0 {
			t.Errorf("ack floor after an abandoned batch = %d, want 0", floor)
		}
		// The abandoned transaction is cancelled in PostgreSQL too, rather
		// than left queued behind the lock.
		waitFor(t, 5*time.Second, "the abandoned batch's statement to stop waiting on the lock", func() bool {
			return faultLockWaiters(t, s) == 0
		})

		release()
		// More attempts arrive while no worker runs.
		faultSubmitRound(t, s, clients, l, "a-late", 2)
		s.startWorker(t, worker.Config{})
		// Well under AckWait (30s): the Naks made the batch available at once.
		s.waitDrained(t, 10*time.Second)
		faultCheckStored(t, s, l)
	})

	// (b) The shutdown budget is long: the cancelled worker keeps the
	// batch in hand, and once the lock is released commits and acks it
	// before Run returns. No other worker runs.
	t.Run("finishes batch within ShutdownTimeout", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, events.StreamConfig{})
		a := s.startAPI(t, api.Config{})
		clients := faultSignup(t, a.URL, "cancel-b", 3)
		naks := faultCountNaks(t, s)
		l := newFaultLedger()

		release := faultLockProgress(t, s.DBURL)
		defer release()
		faultSubmitRound(t, s, clients, l, "b", 5)
		n := l.len()

		cancel, done := s.goWorker(t, worker.Config{ShutdownTimeout: 20 * time.Second})
		faultWaitBlocked(t, s)
		cancel()
		// Bounded negative check: with its batch blocked and budget left,
		// the worker must still be working on it.
		select {
		case <-done:
			t.Fatal("worker returned while its batch was blocked and ShutdownTimeout had not passed")
		case <-time.After(300 * time.Millisecond):
		}
		release()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("worker: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("worker did not return within 15s of the lock's release")
		}
		// Committed before Run returned.
		if got := s.countAttempts(t); got != n {
			t.Fatalf("attempts stored when Run returned = %d, want %d", got, n)
		}
		// Acked by the cancelled worker itself: nobody else is running, and
		// AckWait (30s) is far off, so no redelivery can be doing it.
		s.waitDrained(t, 5*time.Second)
		if got := naks.Load(); got != 0 {
			t.Errorf("Nak advisories = %d, want 0 (the batch was stored)", got)
		}
		faultCheckStored(t, s, l)
	})
}

// TestWorkerKilledMidBatch SIGKILLs a worker process whose batch
// transaction is blocked on a lock the test holds; after the lock is
// released another worker process must store every accepted attempt once.
func TestWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	// A killed process cannot Nak: its batch comes back after AckWait.
	s := newStack(t, events.StreamConfig{AckWait: 2 * time.Second})
	a := s.startAPI(t, api.Config{})
	clients := faultSignup(t, a.URL, "killed", 3)
	l := newFaultLedger()

	release := faultLockProgress(t, s.DBURL)
	defer release()
	faultSubmitRound(t, s, clients, l, "k", 5)

	w1 := s.spawn(t, "worker")
	faultWaitBlocked(t, s)
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	if err := w1.Wait(); err == nil {
		t.Fatal("killed worker exited cleanly")
	}
	if floor := faultAckFloor(t, s); floor != 0 {
		t.Fatalf("ack floor after the kill = %d, want 0 (nothing was committed)", floor)
	}
	killedAt := time.Now()
	release()
	// The killed worker's transaction must never commit: its backend,
	// now unblocked, finds its client gone and rolls back.
	waitFor(t, 5*time.Second, "the killed worker's backend to stop waiting on the lock", func() bool {
		return faultLockWaiters(t, s) == 0
	})
	if got := s.countAttempts(t); got != 0 {
		t.Fatalf("attempts stored by a killed worker = %d, want 0", got)
	}

	faultSubmitRound(t, s, clients, l, "k-late", 2)
	s.spawn(t, "worker")
	s.waitDrained(t, 20*time.Second)
	t.Logf("drained %s after the kill (AckWait %s)", time.Since(killedAt).Round(time.Millisecond), s.Stream.AckWait)
	faultCheckStored(t, s, l)
}

// TestDatabaseUnreachable cuts every connection to PostgreSQL (through a
// TCP proxy) for about 3s under steady load: attempt POSTs must keep
// answering 202, student reads 503 with Retry-After, and after the restore
// the worker must store exactly what was accepted.
func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	u, err := url.Parse(s.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startFaultProxy(t, u.Host)
	u.Host = proxy.Addr()
	pst, err := store.Open(t.Context(), store.Config{URL: u.String(), ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pst.Close)
	// The API and the worker reach PostgreSQL only through the proxy; the
	// test counts rows directly (s.Store).
	ps := *s
	ps.Store = pst
	// The token cache is what lets POSTs authenticate without PostgreSQL.
	// Its TTL is made much shorter than the cut: a token confirmed before the
	// outage must keep working through all of it.
	a := ps.startAPI(t, api.Config{TokenCacheTTL: 300 * time.Millisecond})
	ps.startWorker(t, worker.Config{MaxBackoff: 200 * time.Millisecond})

	const students = 4
	clients := faultSignup(t, a.URL, "unreachable", students)
	l := newFaultLedger()
	// Warm up: one attempt each caches every token and shows the whole
	// path works through the proxy.
	faultSubmitRound(t, s, clients, l, "warm", 1)
	s.waitDrained(t, 10*time.Second)
	warm := make([]string, students) // an attempt id of each student, for reads
	for _, acc := range l.accepted {
		for i := range clients {
			if acc.key == fmt.Sprintf("warm-%d-0", i) {
				warm[i] = acc.body.AttemptID
			}
		}
	}
	for i, id := range warm {
		if id == "" {
			t.Fatalf("no warm-up attempt recorded for student %d", i)
		}
	}

	type outcome struct {
		path       string
		start, end time.Time
		status     int
		retryAfter string
		err        error
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad() // also when the test fails half way
	posts := make([][]outcome, students)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var key string
			var answers []events.Answer
			var quiz store.Quiz
			// Paced, so that the load is steady without taking both CPUs.
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				// Every fifth request retries the previous one, as a client
				// that timed out would.
				if n%5 != 4 || key == "" {
					key = fmt.Sprintf("load-%d-%d", i, n)
					quiz = s.Quizzes[(i*3+n)%len(s.Quizzes)]
					answers = answersFor(quiz, (n+i)%(len(quiz.Questions)+1))
				}
				o := outcome{path: key, start: time.Now()}
				var body attemptBody
				o.status, body, o.err = c.submit(quiz.ID.String(), key, answers)
				o.end = time.Now()
				if o.err == nil && o.status == http.StatusAccepted {
					o.err = l.add(key, body)
				}
				posts[i] = append(posts[i], o)
			}
		}()
	}
	var reads []outcome
	var restoredAt atomic.Int64 // unix nanoseconds, once restored
	var readAfterRestore atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		paths := []string{"/api/v1/attempts?limit=5", "/api/v1/student-progress", "/api/v1/attempts/"}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 5000; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			o := outcome{path: paths[n%len(paths)], start: time.Now()}
			if o.path == "/api/v1/attempts/" {
				o.path += warm[n%students]
			}
			o.status, o.retryAfter, o.err = clients[n%students].faultRead(o.path)
			o.end = time.Now()
			reads = append(reads, o)
			if at := restoredAt.Load(); o.status == http.StatusOK && at != 0 && o.start.UnixNano() > at {
				readAfterRestore.Store(true)
			}
		}
	}()

	time.Sleep(700 * time.Millisecond) // let the load run before the cut
	floorAtCut := faultAckFloor(t, s)
	cutAt := time.Now()
	proxy.Cut()
	time.Sleep(1500 * time.Millisecond)
	// The API stays in rotation while PostgreSQL is down.
	if status, _, err := (&client{base: a.URL, http: httpClient}).faultRead("/readyz"); err != nil || status != http.StatusOK {
		t.Errorf("GET /readyz during the cut: %d %v, want 200", status, err)
	}
	time.Sleep(1500 * time.Millisecond)
	seqAtRestore := faultLastSeq(t, s)
	restoreAt := time.Now()
	restoredAt.Store(restoreAt.UnixNano())
	proxy.Restore()

	// Recovery: everything accepted up to the restore is stored and acked.
	waitFor(t, 30*time.Second, "the worker to catch up after the restore", func() bool {
		return faultAckFloor(t, s) >= seqAtRestore
	})
	caughtUp := time.Since(restoreAt)
	waitFor(t, 15*time.Second, "a student read to succeed after the restore", readAfterRestore.Load)
	stopLoad()
	s.waitDrained(t, 15*time.Second)

	var total, duringCut, bad int
	for _, list := range posts {
		for _, o := range list {
			total++
			if o.start.After(cutAt) && o.end.Before(restoreAt) {
				duringCut++
			}
			if o.err != nil || o.status != http.StatusAccepted {
				bad++
				if bad <= 10 {
					t.Errorf("POST attempt %s at %+.3fs from the cut: status %d, err %v; want 202",
						o.path, o.start.Sub(cutAt).Seconds(), o.status, o.err)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d attempt POSTs did not get 202", bad, total)
	}
	if duringCut < 10 {
		t.Errorf("only %d attempt POSTs ran entirely inside the cut; the test did not load the outage", duringCut)
	}

	var readsInCut, badReads int
	var recoveredRead time.Duration = -1
	badRead := func(format string, args ...any) {
		if badReads++; badReads <= 10 {
			t.Errorf(format, args...)
		}
	}
	for _, o := range reads {
		inCut := o.start.After(cutAt) && o.end.Before(restoreAt)
		switch {
		case o.err != nil:
			badRead("GET %s: %v", o.path, o.err)
		case inCut:
			readsInCut++
			if o.status != http.StatusServiceUnavailable || o.retryAfter == "" {
				badRead("GET %s during the cut: status %d, Retry-After %q; want 503 with Retry-After", o.path, o.status, o.retryAfter)
			}
		case o.status != http.StatusOK && o.status != http.StatusServiceUnavailable:
			badRead("GET %s around the cut: status %d, want 200 or 503", o.path, o.status)
		case o.status == http.StatusServiceUnavailable && o.retryAfter == "":
			badRead("GET %s: 503 without Retry-After", o.path)
		case o.status == http.StatusOK && o.start.After(restoreAt) && recoveredRead < 0:
			recoveredRead = o.end.Sub(restoreAt)
		}
	}
	if badReads > 0 {
		t.Errorf("%d of %d student reads were wrong", badReads, len(reads))
	}
	if readsInCut < 5 {
		t.Errorf("only %d student reads ran inside the cut", readsInCut)
	}
	if recoveredRead < 0 {
		t.Errorf("no student read succeeded after the restore")
	}

	faultCheckStored(t, s, l)
	t.Logf("POSTs: %d (all 202: %v), %d inside the %.1fs cut; reads inside the cut: %d (503); accepted attempts: %d",
		total, bad == 0, duringCut, restoreAt.Sub(cutAt).Seconds(), readsInCut, l.len())
	t.Logf("recovery: backlog of %d events at the restore stored and acked %s after it; first successful read %s after it",
		seqAtRestore-floorAtCut, caughtUp.Round(time.Millisecond), recoveredRead.Round(time.Millisecond))
}

// faultLedger records what clients were told: the first 202 body of every
// attempt id, with the Idempotency-Key it was sent with.
type faultLedger struct {
	mu       sync.Mutex
	accepted map[string]faultAccepted
}

type faultAccepted struct {
	key  string
	body attemptBody
}

func newFaultLedger() *faultLedger {
	return &faultLedger{accepted: map[string]faultAccepted{}}
}

// add records a 202 body; a repeat of an attempt id must tell the client
// the same facts as the first, or add returns an error saying how not.
func (l *faultLedger) add(key string, b attemptBody) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.accepted[b.AttemptID]
	if !ok {
		l.accepted[b.AttemptID] = faultAccepted{key: key, body: b}
		return nil
	}
	p := prev.body
	if prev.key != key || p.QuizID != b.QuizID || p.StudentID != b.StudentID || p.Score != b.Score ||
		p.MaxScore != b.MaxScore || !p.SubmittedAt.Equal(b.SubmittedAt) {
		return fmt.Errorf("attempt %s: retry answered %+v (key %q), first answer was %+v (key %q)", b.AttemptID, b, key, p, prev.key)
	}
	return nil
}

func (l *faultLedger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// faultSignup signs up n students.
func faultSignup(t *testing.T, base, prefix string, n int) []*client {
	t.Helper()
	out := make([]*client, n)
	for i := range out {
		out[i] = signup(t, base, fmt.Sprintf("%s-%d@example.com", prefix, i))
	}
	return out
}

// faultSubmitRound has each client submit n attempts with fresh
// Idempotency-Keys, each sent twice (a client retry), and records the 202s
// in l; anything but 202, or a retry answered differently, fails t.
func faultSubmitRound(t *testing.T, s *stack, clients []*client, l *faultLedger, prefix string, n int) {
	t.Helper()
	for i, c := range clients {
		for j := range n {
			// Two quizzes per student, several attempts each, varied scores:
			// progress counts and best scores are then worth comparing.
			quiz := s.Quizzes[(i*2+j%2)%len(s.Quizzes)]
			right := (3*j + i) % (len(quiz.Questions) + 1)
			key := fmt.Sprintf("%s-%d-%d", prefix, i, j)
			for range 2 {
				status, body, err := c.submit(quiz.ID.String(), key, answersFor(quiz, right))
				if err != nil || status != http.StatusAccepted {
					t.Fatalf("submit %s: status %d, err %v", key, status, err)
				}
				if body.Score != right || body.MaxScore != len(quiz.Questions) {
					t.Fatalf("submit %s: score %d/%d, want %d/%d", key, body.Score, body.MaxScore, right, len(quiz.Questions))
				}
				if err := l.add(key, body); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// faultTally is what faultCheckStored found.
type faultTally struct {
	Acknowledged   int // distinct attempts a client got a 202 for
	Stored         int // attempt rows in the database
	Missing        int // acknowledged, not stored
	Duplicated     int // (student, Idempotency-Key) pairs stored more than once
	Unacknowledged int // stored, never acknowledged to a client
	Mismatched     int // stored with other facts than the 202 body said
}

func (f faultTally) String() string {
	return fmt.Sprintf("acknowledged %d, stored %d, missing %d, duplicated %d, stored but never acknowledged %d, differing from the 202 body %d",
		f.Acknowledged, f.Stored, f.Missing, f.Duplicated, f.Unacknowledged, f.Mismatched)
}

// faultCheckStored compares the database with the ledger: one row per
// accepted attempt and no other, none stored twice for one (student,
// Idempotency-Key), each with the score and submitted_at its client was
// given, and progress rows exactly as those attempts make them. It fails t
// on any difference and returns the counts.
func faultCheckStored(t *testing.T, s *stack, l *faultLedger) faultTally {
	t.Helper()
	var tally faultTally
	ctx := t.Context()
	pool := s.Store.Pool()
	l.mu.Lock()
	defer l.mu.Unlock()

	rows, _ := pool.Query(ctx, `SELECT student_id::text, coalesce(idempotency_key, '<none>'), count(*)
		FROM attempts GROUP BY 1, 2 HAVING count(*) > 1`)
	var student, key string
	var count int
	if _, err := pgx.ForEachRow(rows, []any{&student, &key, &count}, func() error {
		t.Errorf("student %s, Idempotency-Key %q: stored %d times", student, key, count)
		tally.Duplicated++
		return nil
	}); err != nil {
		t.Fatalf("count duplicates: %v", err)
	}

	type row struct {
		id, student, quiz, key, status string
		score, maxScore                int
		submittedAt                    time.Time
	}
	var r row
	stored := map[string]row{}
	rows, _ = pool.Query(ctx, `SELECT id::text, student_id::text, quiz_id::text, coalesce(idempotency_key, ''),
		status, score, max_score, submitted_at FROM attempts`)
	if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.student, &r.quiz, &r.key, &r.status, &r.score, &r.maxScore, &r.submittedAt}, func() error {
		stored[r.id] = r
		return nil
	}); err != nil {
		t.Fatalf("read attempts: %v", err)
	}
	tally.Acknowledged, tally.Stored = len(l.accepted), len(stored)
	if len(stored) != len(l.accepted) {
		t.Errorf("stored attempts = %d, accepted (distinct 202s) = %d", len(stored), len(l.accepted))
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for id, got := range stored {
		acc, ok := l.accepted[id]
		if !ok {
			tally.Unacknowledged++
			report("stored attempt %s (student %s, key %q) was never accepted", id, got.student, got.key)
			continue
		}
		b := acc.body
		if got.student != b.StudentID || got.quiz != b.QuizID || got.key != acc.key || got.status != store.StatusRecorded ||
			got.score != b.Score || got.maxScore != b.MaxScore || !got.submittedAt.Equal(b.SubmittedAt) {
			tally.Mismatched++
			report("attempt %s: stored {student %s quiz %s key %q status %s score %d/%d submitted_at %s}, client was told {student %s quiz %s key %q score %d/%d submitted_at %s}",
				id, got.student, got.quiz, got.key, got.status, got.score, got.maxScore, got.submittedAt.UTC().Format(time.RFC3339Nano),
				b.StudentID, b.QuizID, acc.key, b.Score, b.MaxScore, b.SubmittedAt.UTC().Format(time.RFC3339Nano))
		}
	}
	for id, acc := range l.accepted {
		if _, ok := stored[id]; !ok {
			tally.Missing++
			report("accepted attempt %s (key %q, 202 at %s) was not stored", id, acc.key, acc.body.SubmittedAt.Format(time.RFC3339Nano))
		}
	}

	type progress struct {
		course         string
		attempts, best int
	}
	courseOf := map[string]string{}
	for _, q := range s.Quizzes {
		courseOf[q.ID.String()] = q.CourseID.String()
	}
	want := map[[2]string]progress{}
	for _, acc := range l.accepted {
		k := [2]string{acc.body.StudentID, acc.body.QuizID}
		p := want[k]
		p.course = courseOf[acc.body.QuizID]
		p.attempts++
		p.best = max(p.best, acc.body.Score)
		want[k] = p
	}
	got := map[[2]string]progress{}
	var quiz string
	var p progress
	rows, _ = pool.Query(ctx, `SELECT student_id::text, quiz_id::text, course_id::text, attempts, best_score FROM progress`)
	if _, err := pgx.ForEachRow(rows, []any{&student, &quiz, &p.course, &p.attempts, &p.best}, func() error {
		got[[2]string{student, quiz}] = p
		return nil
	}); err != nil {
		t.Fatalf("read progress: %v", err)
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("progress of student %s, quiz %s = %+v, want %+v", k[0], k[1], g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("progress of student %s, quiz %s = %+v, but no attempt of theirs was accepted", k[0], k[1], g)
		}
	}
	return tally
}

// faultLockProgress locks the progress table (ACCESS EXCLUSIVE) in a
// transaction on a connection of its own: a worker's batch then blocks
// inside its transaction, after fetch and before commit. release rolls the
// lock back; it may be called more than once and must be deferred, so that
// it runs before the workers are stopped.
func faultLockProgress(t *testing.T, dbURL string) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, `LOCK TABLE progress IN ACCESS EXCLUSIVE MODE`)
	}
	if err != nil {
		conn.Close(ctx)
		t.Fatalf("lock progress: %v", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("release progress lock: %v", err)
			}
			conn.Close(ctx)
		})
	}
}

// faultLockWaiters returns how many batch inserts of this test's database
// are waiting on a lock.
func faultLockWaiters(t *testing.T, s *stack) int {
	t.Helper()
	var n int
	err := s.Store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO attempts%'`).Scan(&n)
	if err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	return n
}

// faultWaitBlocked waits until a worker's batch insert waits on a lock.
func faultWaitBlocked(t *testing.T, s *stack) {
	t.Helper()
	waitFor(t, 15*time.Second, "a worker's batch insert to wait on the progress lock", func() bool {
		return faultLockWaiters(t, s) > 0
	})
}

// faultCountNaks counts the Nak advisories of the stack's consumer.
func faultCountNaks(t *testing.T, s *stack) *atomic.Int64 {
	t.Helper()
	nc, _ := eventstest.Connect(t, s.NATS)
	var n atomic.Int64
	sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED."+s.Stream.Name+"."+s.Stream.Consumer,
		func(*nats.Msg) { n.Add(1) })
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		t.Fatalf("subscribe to Nak advisories: %v", err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return &n
}

func faultAckFloor(t *testing.T, s *stack) uint64 {
	t.Helper()
	floor, err := s.Log.AckFloor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return floor
}

func faultLastSeq(t *testing.T, s *stack) uint64 {
	t.Helper()
	stream, err := s.JS.Stream(t.Context(), s.Stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// faultRead GETs path and returns the status and the Retry-After header.
func (c *client) faultRead(path string) (int, string, error) {
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), err
}

// faultProxy forwards TCP connections to a target; Cut closes every open
// connection and refuses new ones until Restore, as a network partition
// between the service and PostgreSQL would, and SetDelay adds latency.
type faultProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	delay  atomic.Int64 // nanoseconds each chunk is held, each way

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// startFaultProxy listens on a free loopback port and forwards to target
// until t ends.
func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr returns the host:port the proxy listens on.
func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			// Refused: the client sees its connection closed at once.
			in.Close()
			out.Close()
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *faultProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, each chunk delivered the proxy's delay after it
// was read (latency, not a bandwidth cap: chunks in flight overlap); when
// either side ends, both are closed.
func (p *faultProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		data []byte
		due  time.Time
	}
	chunks := make(chan chunk, 64)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for c := range chunks {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				src.Close() // ends the reader below
				for range chunks {
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunks <- chunk{data: bytes.Clone(buf[:n]), due: time.Now().Add(time.Duration(p.delay.Load()))}
		}
		if err != nil { // a closed or reset connection ends it either way
			break
		}
	}
	close(chunks)
	<-written
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
	dst.Close()
	src.Close()
}

// Cut closes every open connection and refuses new ones until Restore.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// SetDelay holds every chunk d in each direction from now on; 0 removes the delay.
func (p *faultProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Restore lets new connections through again.
func (p *faultProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}
