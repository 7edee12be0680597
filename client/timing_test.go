package client_test

import (
	"testing"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// A quiz and a course's entry of it carry the quiz's timing: the demo's
// 20-minute exam (two sessions at most) is timed, its first quiz not.
func TestQuizTiming(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	c := client.New(in.URL, client.Options{})
	t.Cleanup(c.CloseIdleConnections)
	exam, _, err := c.Quiz(t.Context(), store.DemoExamID.String())
	if err != nil {
		t.Fatal(err)
	}
	if !exam.Timed() || *exam.TimeLimitS != 1200 || exam.MaxSessions == nil || *exam.MaxSessions != 2 {
		t.Errorf("the demo exam: %+v, want timed, 1200 s, at most 2 sessions", exam.Timing)
	}
	untimed, _, err := c.Quiz(t.Context(), s.Quizzes[0].ID.String())
	if err != nil || untimed.Timed() || untimed.MaxSessions != nil || untimed.OpensAt != nil {
		t.Errorf("an untimed quiz: %+v, %v", untimed.Timing, err)
	}
	course, _, err := c.Course(t.Context(), exam.CourseID)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range course.Quizzes {
		if q.ID == exam.ID && (!q.Timed() || *q.TimeLimitS != 1200) {
			t.Errorf("the exam's entry in its course: %+v", q)
		}
	}
}
