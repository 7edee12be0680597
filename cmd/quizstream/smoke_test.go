package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/worker"
)

func TestSmoke(t *testing.T) {
	s := newStack(t, events.StreamConfig{})
	a := s.startAPI(t, api.Config{})
	s.startWorker(t, worker.Config{})
	c := signup(t, a.URL, "smoke@example.com")
	status, body, err := c.submit(s.Quizzes[0].ID.String(), "k", answersFor(s.Quizzes[0], 7))
	if err != nil || status != http.StatusAccepted || body.Score != 7 {
		t.Fatalf("submit: %d %+v %v", status, body, err)
	}
	s.waitDrained(t, 10*time.Second)
	if n := s.countAttempts(t); n != 1 {
		t.Fatalf("attempts = %d", n)
	}
}
