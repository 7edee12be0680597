package exams_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// plannedSave is one autosave a student sends.
type plannedSave struct {
	question int
	choice   string // "" clears
	seq      int64
}

// planSaves returns a student's saves of the 10 questions of q: two to four
// per question, with seqs that are a permutation of 1..n (so the winning
// save of a question is any of its saves, not the last one sent), in a
// shuffled order, a third of them sent twice; and the winning save of
// each question (the highest seq), as grade takes them.
func planSaves(q store.Quiz, rng *rand.Rand) ([]plannedSave, map[string]string) {
	var saves []plannedSave
	for u := range q.Questions {
		for range 2 + rng.IntN(3) {
			s := plannedSave{question: u}
			if h := rng.IntN(5); h < 4 {
				s.choice = choice(q, u, h)
			} // else: a clear
			saves = append(saves, s)
		}
	}
	for i, p := range rng.Perm(len(saves)) {
		saves[i].seq = int64(p + 1)
	}
	win := map[string]string{}
	best := map[int]int64{}
	for _, s := range saves {
		if s.seq > best[s.question] {
			best[s.question] = s.seq
			win[q.Questions[s.question].ID.String()] = s.choice
		}
	}
	n := len(saves)
	for i := range n {
		if rng.IntN(3) == 0 {
			saves = append(saves, saves[i])
		}
	}
	rng.Shuffle(len(saves), func(i, j int) { saves[i], saves[j] = saves[j], saves[i] })
	return saves, win
}

// A full exam under load: 300 students start the same exam, autosave its
// 10 questions with saves sent out of order, twice, concurrently and
// through two API instances, and submit. Every attempt is graded from the
// highest-seq save of each question (what the student last chose, by
// their own counter), in the 202, in the session and in the stored row;
// every session is one attempt.
func TestFullExamUnderLoad(t *testing.T) {
	// Not parallel: see doc.go.
	const students = 300
	s := apptest.New(t, streams.StreamConfig{})
	quiz := s.Quizzes[0] // replaced below by the demo's 20-minute exam
	for _, c := range store.DemoContent(store.DefaultDemo) {
		for _, q := range c.Quizzes {
			if q.ID == store.DemoExamID {
				quiz = q
			}
		}
	}
	if quiz.ID != store.DemoExamID || quiz.TimeLimit != 20*time.Minute {
		t.Fatalf("the demo has no 20-minute exam: %+v", quiz.ID)
	}
	// Every student comes from one address: no per-address limit on the
	// tokens an instance has not seen yet.
	cfg := api.Config{TokenMissRate: -1}
	apis := []*apptest.Instance{s.StartAPI(t, cfg), s.StartAPI(t, cfg)}
	s.StartWorker(t, worker.Config{})
	s.StartWorker(t, worker.Config{})
	xl := examLog(t, s)
	people := apptest.NewStudents(t, s, "load", students)

	type result struct {
		session string
		attempt client.Attempt
		win     map[string]string
	}
	results := make([]result, students)
	errs := make([]error, students)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 48)
	for i, st := range people {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = func() (result, error) {
				rng := rand.New(rand.NewPCG(uint64(i), 11))
				on := []*client.Client{st.On(apis[0].URL), st.On(apis[1].URL)}
				var r result
				sess, err := on[i%2].StartSession(t.Context(), quiz.ID.String())
				if err != nil {
					return r, fmt.Errorf("start: %w", err)
				}
				r.session = sess.SessionID
				saves, win := planSaves(quiz, rng)
				r.win = win
				// Two autosavers per student, on both instances at once.
				var sw sync.WaitGroup
				saveErrs := make([]error, 2)
				for g := range 2 {
					sw.Go(func() {
						for j := g; j < len(saves); j += 2 {
							p := saves[j]
							var ch *string
							if p.choice != "" {
								ch = &p.choice
							}
							// 300 students on 2 cores: a save may meet a 503
							// (outcome unknown) that its retry settles.
							err := apptest.ExpectRetried(t.Context(), http.StatusAccepted, func(ctx context.Context) error {
								_, err := on[(j/2+g)%2].SaveAnswer(ctx, sess.SessionID, quiz.Questions[p.question].ID.String(), ch, p.seq)
								return err
							})
							if err != nil {
								saveErrs[g] = fmt.Errorf("save %+v: %w", p, err)
								return
							}
						}
					})
				}
				sw.Wait()
				if err := errors.Join(saveErrs...); err != nil {
					return r, err
				}
				err = apptest.ExpectRetried(t.Context(), http.StatusAccepted, func(ctx context.Context) (err error) {
					r.attempt, err = on[(i+1)%2].SubmitSession(ctx, sess.SessionID)
					return err
				})
				return r, err
			}()
		}()
	}
	wg.Wait()
	t.Logf("%d students started, saved and submitted in %s", students, time.Since(start).Round(time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	waitExamsStored(t, s, xl, time.Minute)
	s.WaitDrained(t, time.Minute)
	stored := map[string]int{}
	rows, err := s.DB.Query(t.Context(), `SELECT id::text, score FROM attempts`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id string
		var score int
		if err := rows.Scan(&id, &score); err != nil {
			t.Fatal(err)
		}
		stored[id] = score
		n++
	}
	if n != students {
		t.Errorf("%d attempts stored for %d sessions", n, students)
	}
	for i, r := range results {
		want := grade(quiz, r.win)
		if r.attempt.Score != want || r.attempt.MaxScore != len(quiz.Questions) {
			t.Errorf("student %d: submit answered score %d/%d, want %d from the highest-seq saves", i, r.attempt.Score, r.attempt.MaxScore, want)
		}
		if got, ok := stored[r.attempt.AttemptID]; !ok || got != want {
			t.Errorf("student %d: stored attempt %s has score %d (found %t), want %d", i, r.attempt.AttemptID, got, ok, want)
		}
		sess, err := people[i].On(apis[i%2].URL).Session(t.Context(), r.session)
		if err != nil {
			t.Fatal(err)
		}
		if sess.State != client.SessionSubmitted || sess.AttemptID != r.attempt.AttemptID {
			t.Errorf("student %d: session %s state %q attempt %q", i, sess.SessionID, sess.State, sess.AttemptID)
		}
		if got := saved(sess); fmt.Sprint(got) != fmt.Sprint(r.win) {
			t.Errorf("student %d: session answers %v, want the highest-seq saves %v", i, got, r.win)
		}
	}
	if got := count(t, s, `SELECT count(*) FROM exam_answers`); got != 10*students {
		t.Errorf("%d answer rows, want %d", got, 10*students)
	}
	if drift := count(t, s, `SELECT count(*) FROM exam_finals f JOIN attempts a ON a.id = f.attempt_id`); drift != students {
		t.Errorf("%d finals with their attempt stored, want %d", drift, students)
	}
}
