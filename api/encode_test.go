package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/store"
)

// The appended bodies are, byte for byte, what encoding/json writes for
// the same values (as json.Encoder does, with a newline).
func TestAppendedBodiesMatchEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomID := func() uuid.UUID {
		var id uuid.UUID
		for i := range id {
			id[i] = byte(rng.IntN(256))
		}
		return id
	}
	times := []time.Time{
		time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 100000, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 999999999, time.UTC),
		{},
	}
	var attempts []attemptJSON
	for i := range 20 {
		attempts = append(attempts, attemptJSON{
			AttemptID: randomID(), QuizID: randomID(), StudentID: randomID(),
			Score: rng.IntN(12), MaxScore: 12 - i%3, Status: []string{statusAccepted, statusRecorded, statusFailed}[i%3],
			SubmittedAt: times[i%len(times)],
		})
	}
	same := func(name string, got []byte, v any) {
		t.Helper()
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(got, '\n'), want.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want.Bytes())
		}
	}
	for _, a := range attempts {
		same("attempt", appendAttempt(nil, a), a)
	}
	cursor := encodeCursor(store.Cursor{SubmittedAt: attempts[3].SubmittedAt, ID: attempts[3].AttemptID})
	same("a page", appendAttemptPage(nil, attempts, &cursor), map[string]any{"attempts": attempts, "next_cursor": &cursor})
	same("the last page", appendAttemptPage(nil, attempts[:1], nil), map[string]any{"attempts": attempts[:1], "next_cursor": (*string)(nil)})
	same("an empty page", appendAttemptPage(nil, nil, nil), map[string]any{"attempts": []attemptJSON{}, "next_cursor": nil})

	var courses []courseProgressJSON
	for i := range 4 {
		c := courseProgressJSON{CourseID: randomID(), QuizzesTotal: 5, QuizzesAttempted: i, Attempts: 3 * i, BestScores: map[uuid.UUID]int{}}
		for range i * 2 {
			c.BestScores[randomID()] = rng.IntN(10)
		}
		courses = append(courses, c)
	}
	same("progress", appendProgress(nil, courses), map[string]any{"courses": courses})
	same("no courses", appendProgress(nil, []courseProgressJSON{}), map[string]any{"courses": []courseProgressJSON{}})
}
