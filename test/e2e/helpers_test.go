package e2e_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events"
)

// shuffled returns answers in another order, which is the same submission.
func shuffled(answers []client.Answer, rng *rand.Rand) []client.Answer {
	out := slices.Clone(answers)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// rng2 is a generator for one of the two racing copies of a submission, so
// that the two goroutines share no generator.
func rng2(student, attempt, copy int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(student)<<32|uint64(attempt), uint64(copy)))
}

// eventAnswers converts answers as the client sends them to the events'
// own type, for events.HashAnswers.
func eventAnswers(answers []client.Answer) []events.Answer {
	out := make([]events.Answer, len(answers))
	for i, a := range answers {
		out[i] = events.Answer(a)
	}
	return out
}

// etagOf returns the ETag and the title an instance serves for a quiz; it
// fails t on any error.
func etagOf(t testing.TB, c *client.Client, quizID string) (string, string) {
	t.Helper()
	q, info, err := c.Quiz(t.Context(), quizID)
	if err != nil {
		t.Fatal(err)
	}
	return info.ETag, q.Title
}
