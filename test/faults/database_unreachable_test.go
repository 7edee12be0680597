package faults_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/test/faults"
	"github.com/quizstream/quizstream/worker"
)

// TestDatabaseUnreachable cuts every connection to PostgreSQL (through a
// TCP proxy) for about 3s under steady load: attempt POSTs must keep
// answering 202, student reads 200 from the read model (progress at
// least) or, for what the model cannot answer, 503 with Retry-After, and
// after the restore
// the worker must store exactly what was accepted.
func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	// The API and the worker reach PostgreSQL only through the proxy; the
	// test counts rows directly (s.DB).
	proxy, ps := faults.Proxied(t, s)
	// The token cache is what lets POSTs authenticate without PostgreSQL.
	// Its TTL is made much shorter than the cut: a token confirmed before the
	// outage must keep working through all of it.
	ac := ps.Config(t)
	ac.API, ac.DatabaseConnectTimeout = true, time.Second
	ac.APIConfig = faults.API(api.Config{TokenCacheTTL: 300 * time.Millisecond, ContentReload: -1})
	a := ps.Start(t, ac)
	wc := ps.Config(t)
	wc.Workers, wc.DatabaseConnectTimeout = 1, time.Second
	wc.WorkerConfig = worker.Config{MaxBackoff: 200 * time.Millisecond}
	ps.Start(t, wc)

	const students = 4
	clients := faults.Students(t, a.URL, "unreachable", students)
	l := faults.NewLedger()
	// Warm up: one attempt each caches every token and shows the whole
	// path works through the proxy.
	faults.SubmitRound(t, s, clients, l, "warm", 1)
	s.WaitDrained(t, 10*time.Second)
	warm := make([]string, students) // an attempt id of each student, for reads
	for i := range clients {
		if warm[i] = l.AttemptID(fmt.Sprintf("warm-%d-0", i)); warm[i] == "" {
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
			var answers []client.Answer
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
					answers = apptest.AnswersFor(quiz, (n+i)%(len(quiz.Questions)+1))
				}
				o := outcome{path: key, start: time.Now()}
				var body client.Attempt
				o.status, body, o.err = faults.Submit(t.Context(), c, quiz.ID.String(), key, answers)
				o.end = time.Now()
				if o.err == nil && o.status == http.StatusAccepted {
					o.err = l.Add(key, body)
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
			o.status, o.retryAfter, o.err = faults.Read(t.Context(), clients[n%students], o.path)
			o.end = time.Now()
			reads = append(reads, o)
			if at := restoredAt.Load(); o.status == http.StatusOK && at != 0 && o.start.UnixNano() > at {
				readAfterRestore.Store(true)
			}
		}
	}()

	time.Sleep(700 * time.Millisecond) // let the load run before the cut
	floorAtCut := faults.AckFloor(t, s)
	proxy.Cut()
	// After the cut returns: a read that began before it may still get the
	// answer PostgreSQL sent before its connection closed.
	cutAt := time.Now()
	time.Sleep(1500 * time.Millisecond)
	// The API stays in rotation while PostgreSQL is down.
	if status, _, err := faults.Read(t.Context(), apptest.Client(a.URL), "/readyz"); err != nil || status != http.StatusOK {
		t.Errorf("GET /readyz during the cut: %d %v, want 200", status, err)
	}
	time.Sleep(1500 * time.Millisecond)
	seqAtRestore := faults.LastSeq(t, s)
	restoreAt := time.Now()
	restoredAt.Store(restoreAt.UnixNano())
	proxy.Restore()

	// Recovery: everything accepted up to the restore is stored and acked.
	apptest.WaitFor(t, 30*time.Second, "the worker to catch up after the restore", func() bool {
		return faults.AckFloor(t, s) >= seqAtRestore
	})
	caughtUp := time.Since(restoreAt)
	apptest.WaitFor(t, 15*time.Second, "a student read to succeed after the restore", readAfterRestore.Load)
	stopLoad()
	s.WaitDrained(t, 15*time.Second)

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

	var readsInCut, modelInCut, badReads int
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
			if o.status == http.StatusOK && o.path == "/api/v1/student-progress" {
				modelInCut++
			}
			if o.status != http.StatusOK && (o.status != http.StatusServiceUnavailable || o.retryAfter == "") {
				badRead("GET %s during the cut: status %d, Retry-After %q; want 200 (the read model) or 503 with Retry-After", o.path, o.status, o.retryAfter)
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
	if modelInCut == 0 {
		t.Errorf("no progress read was answered inside the cut: the read model answers it without PostgreSQL")
	}
	if recoveredRead < 0 {
		t.Errorf("no student read succeeded after the restore")
	}

	faults.Check(t, s, l)
	t.Logf("POSTs: %d (all 202: %v), %d inside the %.1fs cut; reads inside the cut: %d (%d of progress from the read model); accepted attempts: %d",
		total, bad == 0, duringCut, restoreAt.Sub(cutAt).Seconds(), readsInCut, modelInCut, l.Len())
	t.Logf("recovery: backlog of %d events at the restore stored and acked %s after it; first successful read %s after it",
		seqAtRestore-floorAtCut, caughtUp.Round(time.Millisecond), recoveredRead.Round(time.Millisecond))
}
