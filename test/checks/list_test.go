package checks_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// TestListChecks: a student's checks page newest first through cursors,
// each once, whether stored or only in the stream (read-your-writes), and
// filtered by exercise.
func TestListChecks(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	cc := checksConfig(0)
	a := startAll(t, s, cc, "", worker.CheckerConfig{})
	c := apptest.Signup(t, a.URL, "lister@example.com")
	reverse := store.DemoExerciseReverseID.String()
	var want []string // newest first
	for i := range 7 {
		ex := sumID
		if i%3 == 0 {
			ex = reverse
		}
		sub, err := c.SubmitCheck(t.Context(), ex, "go", fmt.Sprintf("package main // %d", i), client.WithIdempotencyKey(fmt.Sprintf("list-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{sub.CheckID}, want...)
		// Right after its 202 the check is in the list, stored or not.
		page, err := c.Checks(t.Context(), client.ChecksQuery{Limit: 1})
		if err != nil || len(page.Checks) != 1 || page.Checks[0].CheckID != sub.CheckID {
			t.Fatalf("the newest check right after its 202: %+v, %v; want %s", page, err, sub.CheckID)
		}
	}
	walk := func(q client.ChecksQuery) []string {
		var ids []string
		for {
			page, err := c.Checks(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range page.Checks {
				ids = append(ids, ch.CheckID)
			}
			if page.NextCursor == "" {
				return ids
			}
			q.Cursor = page.NextCursor
		}
	}
	same := func(what string, got, want []string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	same("pages of 2 before the worker stored them all", walk(client.ChecksQuery{Limit: 2}), want)
	apptest.WaitFor(t, 30*time.Second, "the checks to be stored", func() bool { return len(statuses(t, s)) == len(want) })
	same("pages of 3 once stored", walk(client.ChecksQuery{Limit: 3}), want)
	var reverseWant []string
	for i, id := range want {
		if (len(want)-1-i)%3 == 0 {
			reverseWant = append(reverseWant, id)
		}
	}
	same("the reverse exercise's", walk(client.ChecksQuery{ExerciseID: reverse, Limit: 2}), reverseWant)
	same("an exercise nobody has", walk(client.ChecksQuery{ExerciseID: "nothing"}), nil)
}
