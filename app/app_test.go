package app_test

import (
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

func TestAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"2.12.3": true, "v2.12.3": true, "2.12.4": true, "2.13.0": true, "3.0.0": true, "2.15.2": true,
		"2.12.2": false, "2.9.10": false, "2.11.99": false, "1.99.0": false, "": false,
		"2.12.3-RC.1": true,
	} {
		if got := app.AtLeast(v, 2, 12, 3); got != want {
			t.Errorf("AtLeast(%q, 2.12.3) = %v, want %v", v, got, want)
		}
	}
}

// The wiring runs: an API instance accepts an attempt, and a worker
// instance stores it.
func TestSmoke(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	c := apptest.Signup(t, a.URL, "smoke@example.com")
	got, err := apptest.Submit(t.Context(), c, s.Quizzes[0].ID.String(), "k", apptest.AnswersFor(s.Quizzes[0], 7))
	if err != nil || got.Score != 7 {
		t.Fatalf("submit: %+v %v", got, err)
	}
	s.WaitDrained(t, 10*time.Second)
	if n := s.CountAttempts(t); n != 1 {
		t.Fatalf("attempts = %d", n)
	}
}

// Seed, which `quizstream seed` runs, changes nothing on seeded content
// and restores edited content. (The test of the command itself, in
// test/e2e, runs the binary: its coverage is not counted here.)
func TestSeed(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	log := apptest.Logger(t)
	if changed, err := app.Seed(t.Context(), s.Store, log); err != nil || changed != 0 {
		t.Fatalf("seed on seeded content: %d rows changed, %v", changed, err)
	}
	quiz := s.Quizzes[0]
	if _, err := s.DB.Exec(t.Context(), `UPDATE quizzes SET title = 'Edited' WHERE id = $1`, quiz.ID); err != nil {
		t.Fatal(err)
	}
	if changed, err := app.Seed(t.Context(), s.Store, log); err != nil || changed != 1 {
		t.Fatalf("seed after an edit: %d rows changed, %v; want 1", changed, err)
	}
	if n := storetest.Int(t, s.DB, `SELECT count(*) FROM quizzes WHERE id = $1 AND title = $2`, quiz.ID, quiz.Title); n != 1 {
		t.Errorf("seed left the edited title in place")
	}
}
