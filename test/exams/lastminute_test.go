package exams_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// Lost in the last minute: students save answers up to just before their
// deadline and never submit, and every API and worker process is killed
// (SIGKILL) after the last save and started again only after deadline +
// grace. The stream holds each session's timer: every session is
// finalized within a few seconds of the restart, from exactly its saved
// answers (the highest seq of each question), once, as "expired" with its
// deadline as submitted_at.
func TestLostInTheLastMinute(t *testing.T) {
	// Not parallel: see doc.go.
	const (
		students = 40
		limit    = 20 * time.Second // time to start and save on a slow machine (CI runs every package at once)
		// A save before deadline + grace counts, and no timer fires
		// before it: the processes must die before the first one. Saves
		// under -race, beside CI's other packages, may take seconds.
		grace = 5
	)
	s := apptest.New(t, streams.StreamConfig{})
	quiz := addExam(t, s, "last-minute", func(q *store.Quiz) { q.TimeLimit, q.Grace = limit, seconds(grace) })
	worker := s.Spawn(t, "worker")
	api, base := s.SpawnAPI(t, "")
	people := apptest.NewStudents(t, s, "lost", students)

	type plan struct {
		session  client.Session
		win      map[string]string
		lastSave time.Time
	}
	plans := make([]plan, students)
	errs := make([]error, students)
	var wg sync.WaitGroup
	for i, st := range people {
		wg.Go(func() {
			errs[i] = func() error {
				c := st.On(base)
				rng := rand.New(rand.NewPCG(uint64(i), 2))
				sess, err := c.StartSession(t.Context(), quiz.ID.String())
				if err != nil {
					return fmt.Errorf("start: %w", err)
				}
				p := plan{session: sess, win: map[string]string{}}
				save := func(u, h int, seq int64) error {
					var ch *string
					if h >= 0 {
						ch = ptr(choice(quiz, u, h))
					}
					if _, err := c.SaveAnswer(t.Context(), sess.SessionID, quiz.Questions[u].ID.String(), ch, seq); err != nil {
						return fmt.Errorf("save question %d seq %d: %w", u, seq, err)
					}
					if ch == nil {
						p.win[quiz.Questions[u].ID.String()] = ""
					} else {
						p.win[quiz.Questions[u].ID.String()] = *ch
					}
					p.lastSave = time.Now()
					return nil
				}
				seq := int64(0)
				for u := range quiz.Questions[:7] { // three questions left unanswered
					seq++
					if err := save(u, rng.IntN(4), seq); err != nil {
						return err
					}
				}
				// The last minute: the student changes their mind on a few
				// answers (one cleared) just before the deadline: 3 s
				// before, for 120 saves (each validated against the spec
				// by the test's client, under -race) to be answered and
				// every process killed before it.
				time.Sleep(time.Until(sess.Deadline.Add(-3*time.Second - time.Duration(rng.IntN(300))*time.Millisecond)))
				for k, u := range []int{1, 4, 6} {
					seq++
					h := correct(quiz, u)
					if k == 2 {
						h = -1
					}
					if err := save(u, h, seq); err != nil {
						return err
					}
				}
				plans[i] = p
				return nil
			}()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	last := slices.MaxFunc(plans, func(a, b plan) int { return a.lastSave.Compare(b.lastSave) })
	for _, cmd := range []interface {
		Kill() error
	}{api.Process, worker.Process} {
		if err := cmd.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
	}
	api.Wait()
	worker.Wait()
	killed := time.Now()
	t.Logf("killed every process %s after the last save", killed.Sub(last.lastSave).Round(time.Millisecond))
	first := slices.MinFunc(plans, func(a, b plan) int { return a.session.Deadline.Compare(b.session.Deadline) })
	if edge := first.session.Deadline.Add(grace * time.Second); !killed.Before(edge) {
		t.Fatalf("killed at %s, after the first deadline + grace %s: a timer may have fired; the test is too slow for its limit", killed, edge)
	}

	// Nothing runs through deadline + grace (+ the timers' settling delay).
	latest := slices.MaxFunc(plans, func(a, b plan) int { return a.session.Deadline.Compare(b.session.Deadline) })
	cutoff := latest.session.Deadline.Add(grace * time.Second)
	time.Sleep(time.Until(cutoff.Add(3 * time.Second)))
	restarted := time.Now()
	s.Spawn(t, "worker")
	_, base = s.SpawnAPI(t, "")

	xl := examLog(t, s)
	ids, owners := make([]uuid.UUID, students), make([]uuid.UUID, students)
	for i, p := range plans {
		ids[i], owners[i] = uuid.MustParse(p.session.SessionID), people[i].ID
	}
	apptest.WaitFor(t, 30*time.Second, "every session to be finalized", func() bool {
		return len(finals(t, xl, ids, owners)) == students
	})
	all := finals(t, xl, ids, owners)
	waitExamsStored(t, s, xl, 30*time.Second)
	s.WaitDrained(t, 30*time.Second)
	var slowest time.Duration
	for i, p := range plans {
		fs := all[ids[i]]
		if len(fs) != 1 {
			t.Errorf("session %d: %d finalizations in the stream, want 1", i, len(fs))
			continue
		}
		f := fs[0]
		slowest = max(slowest, f.FinalizedAt.Sub(restarted))
		if f.FinalizedAt.Before(p.session.Deadline.Add(grace*time.Second)) || f.FinalizedAt.After(restarted.Add(5*time.Second)) {
			t.Errorf("session %d finalized at %s: want after its deadline + grace %s, within 5s of the restart at %s",
				i, f.FinalizedAt, p.session.Deadline.Add(grace*time.Second), restarted)
		}
		want := grade(quiz, p.win)
		if f.By != events.FinalizedByDeadline || f.Score != want || !f.SubmittedAt.Equal(p.session.Deadline) {
			t.Errorf("session %d: finalized by %s with score %d at %s; want by deadline, score %d, at %s",
				i, f.By, f.Score, f.SubmittedAt, want, p.session.Deadline)
		}
		var answered []string
		for q, ch := range p.win {
			if ch != "" {
				answered = append(answered, q+"="+ch)
			}
		}
		var got []string
		for _, a := range f.Answers {
			got = append(got, a.QuestionID+"="+a.ChoiceID)
		}
		slices.Sort(answered)
		slices.Sort(got)
		if !slices.Equal(got, answered) {
			t.Errorf("session %d: finalized with answers %v, want the saved ones %v", i, got, answered)
		}
		var rows, score int
		var submitted time.Time
		if err := s.DB.QueryRow(t.Context(), `SELECT count(*), max(score), max(submitted_at) FROM attempts WHERE student_id = $1`,
			people[i].ID).Scan(&rows, &score, &submitted); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || score != want || !submitted.Equal(p.session.Deadline) {
			t.Errorf("session %d: %d attempts stored, score %d at %s; want 1, %d at the deadline %s", i, rows, score, submitted, want, p.session.Deadline)
		}
		var sess client.Session
		if err := apptest.Expect(t.Context(), http.StatusOK, func(ctx context.Context) (err error) {
			sess, err = people[i].On(base).Session(ctx, p.session.SessionID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if sess.State != client.SessionExpired || sess.AttemptID != f.AttemptID.String() {
			t.Errorf("session %d reads %q with attempt %q, want expired with %s", i, sess.State, sess.AttemptID, f.AttemptID)
		}
	}
	t.Logf("every session finalized within %s of the restart (%s after the last deadline + grace)",
		slowest.Round(time.Millisecond), restarted.Sub(cutoff).Round(time.Millisecond))
}
