package readmodel_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// 1,000 progress and attempts-list reads of students whose attempts are
// recorded cost PostgreSQL not one statement: the read model answers
// them, and each answer equals what PostgreSQL holds. Then the reads the
// model cannot answer (a filter past its page, a student it does not
// hold) go to PostgreSQL, answer the same, and are counted by reason.
func TestReadsWithoutPostgres(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	s.StartWorker(t, worker.Config{})
	in := s.StartAPI(t, api.Config{TokenMissRate: -1, TokenCacheTTL: 10 * time.Minute, AttemptRate: -1, MaxUnsettledPerStudent: -1})
	people := apptest.NewStudents(t, s, "reads", 20)
	clients := make([]*client.Client, len(people))
	var wg sync.WaitGroup
	for i, st := range people {
		clients[i] = st.On(in.URL)
		// 1 to 39 attempts: some students fit the model's page whole,
		// others overflow it.
		wg.Go(func() {
			for k := range 1 + i*2 {
				q := s.Quizzes[(i+k)%len(s.Quizzes)]
				_, err := clients[i].SubmitAttempt(t.Context(), q.ID.String(), apptest.AnswersFor(q, k%len(q.Questions)),
					client.WithIdempotencyKey(fmt.Sprintf("reads-%d-%d", i, k)))
				if err != nil {
					t.Errorf("submit: %v", err)
				}
			}
			if _, err := clients[i].User(t.Context()); err != nil { // the token, cached before the count
				t.Errorf("user: %v", err)
			}
		})
	}
	wg.Wait()
	s.WaitDrained(t, time.Minute)

	before := in.App.Store.Queries()
	for r := range 1000 {
		i := r % len(people)
		if r%2 == 0 {
			p, err := clients[i].Progress(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			checkProgress(t, s, people[i].ID, p)
			continue
		}
		page, err := clients[i].Attempts(t.Context(), client.AttemptsQuery{})
		if err != nil {
			t.Fatal(err)
		}
		checkPage(t, s, people[i].ID, store.ListAttemptsParams{StudentID: people[i].ID, Limit: 20}, page)
	}
	if n := in.App.Store.Queries() - before; n != 0 {
		t.Errorf("1,000 student reads sent PostgreSQL %d statements, want 0", n)
	}
	if f := fallbacks(t, in.App.Registry); len(f) != 0 {
		t.Errorf("fallbacks during the reads: %v, want none", f)
	}

	// A quiz filter for a student with more attempts than the model's
	// page: PostgreSQL answers, and the fallback is counted.
	big, q := len(people)-1, s.Quizzes[0]
	page, err := clients[big].Attempts(t.Context(), client.AttemptsQuery{QuizID: q.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, s, people[big].ID, store.ListAttemptsParams{StudentID: people[big].ID, QuizID: q.ID, Limit: 20}, page)
	// A filter of a student whose attempts all fit the page: the model.
	page, err = clients[1].Attempts(t.Context(), client.AttemptsQuery{QuizID: s.Quizzes[1].ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, s, people[1].ID, store.ListAttemptsParams{StudentID: people[1].ID, QuizID: s.Quizzes[1].ID, Limit: 20}, page)

	// A student whose attempts were stored without the stream (as a
	// restore of PostgreSQL would): the model holds nothing of them.
	ghost := apptest.NewStudents(t, s, "ghost", 1)[0]
	row := worker.Row(1, eventFor(ghost.ID, q))
	if _, err := s.Store.InsertAttempts(t.Context(), []store.Attempt{row}); err != nil {
		t.Fatal(err)
	}
	p, err := ghost.On(in.URL).Progress(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkProgress(t, s, ghost.ID, p)
	f := fallbacks(t, in.App.Registry)
	if f["filter"] != 1 || f["missing"] != 1 || len(f) != 2 {
		t.Errorf("fallbacks = %v, want filter 1 and missing 1", f)
	}
	m, err := readmodel.Open(t.Context(), s.JS)
	if err != nil {
		t.Fatal(err)
	}
	modelEqualsPostgres(t, s, m, people)
}

// checkProgress fails t unless p shows the student's progress rows in
// PostgreSQL.
func checkProgress(t testing.TB, s *apptest.Stack, id uuid.UUID, p client.Progress) {
	t.Helper()
	rows, err := s.Store.GetProgress(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]client.CourseProgress{}
	for _, r := range rows {
		c := want[r.CourseID.String()]
		if c.BestScores == nil {
			c.BestScores = map[string]int{}
		}
		c.QuizzesAttempted++
		c.Attempts += r.Attempts
		c.BestScores[r.QuizID.String()] = r.BestScore
		want[r.CourseID.String()] = c
	}
	seen := 0
	for _, c := range p.Courses {
		w, ok := want[c.CourseID]
		if !ok {
			if c.Attempts != 0 || c.QuizzesAttempted != 0 || len(c.BestScores) != 0 {
				t.Fatalf("progress of %s in course %s: %+v, want none", id, c.CourseID, c)
			}
			continue
		}
		seen++
		if c.Attempts != w.Attempts || c.QuizzesAttempted != w.QuizzesAttempted || fmt.Sprint(c.BestScores) != fmt.Sprint(w.BestScores) {
			t.Fatalf("progress of %s in course %s: %+v, want %+v", id, c.CourseID, c, w)
		}
	}
	if seen != len(want) {
		t.Fatalf("progress of %s shows %d courses with attempts, PostgreSQL %d", id, seen, len(want))
	}
}

// checkPage fails t unless page is PostgreSQL's page p, every attempt
// recorded, and says whether a next page exists as PostgreSQL does.
func checkPage(t testing.TB, s *apptest.Stack, id uuid.UUID, p store.ListAttemptsParams, page client.AttemptPage) {
	t.Helper()
	want := p.Limit
	p.Limit++
	rows, err := s.Store.ListAttempts(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	more := len(rows) > want
	rows = rows[:min(len(rows), want)]
	if len(page.Attempts) != len(rows) || (page.NextCursor != "") != more {
		t.Fatalf("page of %s: %d attempts, next %q; PostgreSQL has %d, more %v", id, len(page.Attempts), page.NextCursor, len(rows), more)
	}
	for i, a := range page.Attempts {
		r := rows[i]
		if a.AttemptID != r.ID.String() || a.Score != r.Score || a.MaxScore != r.MaxScore || a.Status != "recorded" ||
			!a.SubmittedAt.Equal(r.SubmittedAt) || a.QuizID != r.QuizID.String() || a.StudentID != id.String() {
			t.Fatalf("page of %s, attempt %d: %+v, PostgreSQL %+v", id, i, a, r)
		}
	}
}
