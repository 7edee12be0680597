package readmodel_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/checker/judge0test"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

var sumID = store.DemoExerciseSumID.String()

// examine gives a student sessions of the exam: an open one with saves
// (a question saved twice), and, when submitted, one before it that was
// submitted.
func examine(t *testing.T, c *client.Client, exam store.Quiz, submitted bool) {
	t.Helper()
	choice := func(u, h int) *string { id := exam.Questions[u].Choices[h].ID.String(); return &id }
	if submitted {
		x, err := c.StartSession(t.Context(), exam.ID.String())
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := c.SaveAnswer(t.Context(), x.SessionID, exam.Questions[0].ID.String(), choice(0, 0), 1); err != nil {
			t.Error(err)
		}
		if _, err := c.SubmitSession(t.Context(), x.SessionID); err != nil {
			t.Error(err)
		}
	}
	x, err := c.StartSession(t.Context(), exam.ID.String())
	if err != nil {
		t.Error(err)
		return
	}
	for k, save := range []struct {
		u   int
		seq int64
		c   *string
	}{{1, 1, choice(1, 1)}, {2, 1, nil}, {1, 2, choice(1, 2)}} {
		if _, err := c.SaveAnswer(t.Context(), x.SessionID, exam.Questions[save.u].ID.String(), save.c, save.seq); err != nil {
			t.Errorf("save %d: %v", k, err)
		}
	}
}

// 400 session and check reads of students whose sessions and checks are
// settled cost PostgreSQL not one statement, and each answer equals what
// PostgreSQL holds. A filter past a student's page of checks goes to
// PostgreSQL, answers the same, and is counted.
func TestSessionAndCheckReadsWithoutPostgres(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	exam := addExam(t, s, "reads")
	fake := judge0test.Start(t, judge0test.Config{})
	in := startFull(t, s, fake.URL)
	people := apptest.NewStudents(t, s, "parts", 6)
	clients := make([]*client.Client, len(people))
	total := 0
	var wg sync.WaitGroup
	for i, st := range people {
		clients[i] = st.On(in.URL)
		n := 2 + 5*i // 2 to 27 checks: some students' fit the model's page, others overflow it
		total += n
		wg.Go(func() {
			examine(t, clients[i], exam, i%2 == 1)
			for k := range n {
				if _, err := clients[i].SubmitCheck(t.Context(), sumID, "python", program(fmt.Sprintf("%d-%d", i, k), k%3 != 0),
					client.WithIdempotencyKey(fmt.Sprintf("parts-%d-%d", i, k))); err != nil {
					t.Errorf("check: %v", err)
				}
			}
			if _, err := clients[i].User(t.Context()); err != nil { // the token, cached before the count
				t.Errorf("user: %v", err)
			}
		})
	}
	wg.Wait()
	apptest.WaitFor(t, time.Minute, "every check's verdict to be stored", func() bool {
		var n int
		err := s.DB.QueryRow(t.Context(), `SELECT count(*) FROM checks WHERE status IN ('passed', 'failed', 'error')`).Scan(&n)
		return err == nil && n == total
	})
	waitPartsSettled(t, s)

	// The reads go to an API instance of its own: the full instance's
	// workers and checker share its store, and a statement of theirs
	// (a late redelivery, say) is not a read's.
	reader := s.StartAPI(t, api.Config{AttemptRate: -1, MaxUnsettledPerStudent: -1, TokenMissRate: -1, TokenCacheTTL: 10 * time.Minute})
	for i, st := range people {
		clients[i] = st.On(reader.URL)
		if _, err := clients[i].User(t.Context()); err != nil { // the token, cached before the count
			t.Fatal(err)
		}
	}
	in = reader
	before := in.App.Store.Queries()
	for r := range 400 {
		i, id := r%len(people), people[r%len(people)].ID
		c := clients[i]
		switch r / len(people) % 4 {
		case 0:
			list, err := c.Sessions(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			checkSessions(t, s, id, uuid.Nil, list)
		case 1:
			rows, err := s.Store.ListExamSessions(t.Context(), id, uuid.Nil)
			if err != nil {
				t.Fatal(err)
			}
			x, err := c.Session(t.Context(), rows[len(rows)-1].ID.String())
			if err != nil {
				t.Fatal(err)
			}
			checkSessions(t, s, id, rows[len(rows)-1].ID, []client.Session{x})
		case 2:
			page, err := c.Checks(t.Context(), client.ChecksQuery{})
			if err != nil {
				t.Fatal(err)
			}
			rows, err := s.Store.ListChecks(t.Context(), store.ListChecksParams{StudentID: id, Limit: 21})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Checks) != min(len(rows), 20) || (page.NextCursor != "") != (len(rows) > 20) {
				t.Fatalf("checks of %s: %d, next %q; PostgreSQL %d", id, len(page.Checks), page.NextCursor, len(rows))
			}
			for k, ch := range page.Checks {
				sameCheck(t, ch, rows[k])
			}
		case 3:
			rows, err := s.Store.ListChecks(t.Context(), store.ListChecksParams{StudentID: id, Limit: 20})
			if err != nil {
				t.Fatal(err)
			}
			row := rows[r%len(rows)]
			ch, err := c.CheckByID(t.Context(), row.ID.String())
			if err != nil {
				t.Fatal(err)
			}
			sameCheck(t, ch, row)
		}
	}
	if n := in.App.Store.Queries() - before; n != 0 {
		t.Errorf("400 session and check reads sent PostgreSQL %d statements, want 0", n)
	}
	if f := fallbacks(t, in.App.Registry); len(f) != 0 {
		t.Errorf("fallbacks during the reads: %v, want none", f)
	}

	// An exercise filter for the student with more checks than the page:
	// PostgreSQL answers, and the fallback is counted.
	big := len(people) - 1
	page, err := clients[big].Checks(t.Context(), client.ChecksQuery{ExerciseID: sumID, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.Store.ListChecks(t.Context(), store.ListChecksParams{StudentID: people[big].ID, ExerciseID: store.DemoExerciseSumID, Limit: 5})
	if err != nil || len(page.Checks) != len(rows) {
		t.Fatalf("filtered checks: %d, PostgreSQL %d (%v)", len(page.Checks), len(rows), err)
	}
	for k, ch := range page.Checks {
		sameCheck(t, ch, rows[k])
	}
	if f := fallbacks(t, in.App.Registry); f["filter"] != 1 || len(f) != 1 {
		t.Errorf("fallbacks = %v, want filter 1", f)
	}
	m, err := readmodel.Open(t.Context(), s.JS)
	if err != nil {
		t.Fatal(err)
	}
	partsEqualPostgres(t, s, m, people)
}

// A check polled on two instances while the checker runs it never reads
// less far along than it read before (queued, running, then its verdict),
// whether the answer comes from the stream, the read model or both; its
// final answer is PostgreSQL's.
func TestCheckPolledNeverBackwards(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	fake := judge0test.Start(t, judge0test.Config{Delay: 20 * time.Millisecond, Polls: 5})
	full := startFull(t, s, fake.URL)
	other := startFull(t, s, "") // a second API (and worker), no checker
	st := apptest.NewStudents(t, s, "poll", 1)[0]
	on := []*client.Client{st.On(full.URL), st.On(other.URL)}
	rank := map[string]int{"queued": 0, "running": 1, "passed": 2, "failed": 2, "error": 2}
	for k := range 4 {
		sub, err := on[0].SubmitCheck(t.Context(), sumID, "python", program(fmt.Sprintf("poll-%d", k), k%2 == 0),
			client.WithIdempotencyKey(fmt.Sprintf("poll-%d", k)))
		if err != nil {
			t.Fatal(err)
		}
		seen, settledReads := 0, 0
		for n := 0; settledReads < 20; n++ {
			if n > 5000 {
				t.Fatalf("check %s never settled", sub.CheckID)
			}
			c := on[n%2]
			var status string
			if n%3 == 0 {
				page, err := c.Checks(t.Context(), client.ChecksQuery{Limit: 1})
				if err != nil || len(page.Checks) != 1 || page.Checks[0].CheckID != sub.CheckID {
					t.Fatalf("newest check: %+v, %v; want %s", page, err, sub.CheckID)
				}
				status = page.Checks[0].Status
			} else {
				ch, err := c.CheckByID(t.Context(), sub.CheckID)
				if err != nil {
					t.Fatal(err)
				}
				status = ch.Status
			}
			if rank[status] < seen {
				t.Fatalf("check %s read %s after a status of rank %d: a read went backwards", sub.CheckID, status, seen)
			}
			seen = rank[status]
			if seen == 2 {
				row, err := s.Store.GetCheck(t.Context(), st.ID, uuid.MustParse(sub.CheckID))
				if err == nil && rank[row.Status] == 2 {
					settledReads++
				}
			}
		}
		row, err := s.Store.GetCheck(t.Context(), st.ID, uuid.MustParse(sub.CheckID))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range on {
			ch, err := c.CheckByID(t.Context(), sub.CheckID)
			if err != nil {
				t.Fatal(err)
			}
			sameCheck(t, ch, row)
		}
	}
}

// The rebuild builds each student's sessions and checks from PostgreSQL
// and compares them with the model's: corrupted values are counted and,
// with Swap, replaced, and the model equals PostgreSQL again.
func TestRebuildParts(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	exam := addExam(t, s, "rebuild")
	in := startFull(t, s, "") // no checker: checks stay queued
	people := apptest.NewStudents(t, s, "rebuild-parts", 3)
	for i, st := range people {
		c := st.On(in.URL)
		examine(t, c, exam, false)
		for k := range 3 {
			if _, err := c.SubmitCheck(t.Context(), sumID, "python", program(fmt.Sprintf("r%d-%d", i, k), true),
				client.WithIdempotencyKey(fmt.Sprintf("rebuild-%d-%d", i, k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitPartsSettled(t, s)
	m, err := readmodel.OpenWriter(t.Context(), s.JS, eventlog.BatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	partsEqualPostgres(t, s, m, people)
	// Corrupt a save's seq, a check count and a check's status.
	v, rev, err := m.GetSessions(t.Context(), people[0].ID)
	if err != nil || len(v.List) != 1 || len(v.List[0].Answers) == 0 {
		t.Fatalf("sessions of %s: %+v, %v", people[0].ID, v, err)
	}
	v.List[0].Answers[0].Seq += 10
	if _, err := m.PutSessions(t.Context(), people[0].ID, &v, rev); err != nil {
		t.Fatal(err)
	}
	for i, st := range people[1:] {
		v, rev, err := m.GetChecks(t.Context(), st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			v.Total++
		} else {
			v.Page[0].Status = "passed"
		}
		if _, err := m.PutChecks(t.Context(), st.ID, &v, rev); err != nil {
			t.Fatal(err)
		}
	}
	cfg := replay.ReadModelConfig{Store: s.Store, JetStream: s.JS, Stream: s.Stream, Logger: apptest.Logger(t)}
	res, err := replay.RebuildReadModel(t.Context(), cfg)
	if err != nil || res.Parts.Students != 3 || res.Parts.Differed != 3 || res.Parts.Swapped != 0 {
		t.Fatalf("rebuild without swap: %+v, %v; want 3 students, 3 values differing, none swapped", res.Parts, err)
	}
	if v, _, _ := m.GetChecks(t.Context(), people[1].ID); v.Total != 4 {
		t.Fatal("a rebuild without swap changed the model")
	}
	cfg.Swap = true
	if res, err = replay.RebuildReadModel(t.Context(), cfg); err != nil || res.Parts.Differed != 3 || res.Parts.Swapped != 3 {
		t.Fatalf("rebuild with swap: %+v, %v; want 3 differing, 3 swapped", res.Parts, err)
	}
	partsEqualPostgres(t, s, m, people)
	if res, err = replay.RebuildReadModel(t.Context(), cfg); err != nil || res.Parts.Differed != 0 {
		t.Fatalf("a second rebuild: %+v, %v; want nothing differing", res.Parts, err)
	}
}
