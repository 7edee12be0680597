package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/quizstream/quizstream/client"
)

// CheckProgram is a program the check task submits (Config.Checks): to
// which exercise, in which of its languages.
type CheckProgram struct {
	ExerciseID string
	Language   string
	Source     string
}

// SentCheck is one check the check task submitted.
type SentCheck struct {
	// Key is its Idempotency-Key, the same on every try.
	Key       string
	StudentID string
	// Accepted says a 202 was heard; CheckID is the check it named. A
	// check without one may still have been taken (its answer lost).
	Accepted bool
	CheckID  string
	// At is when its 202 was heard, or when its last try ended.
	At time.Time
}

// submitCheck submits one of Config.Checks with a new Idempotency-Key,
// tried again with that key as attempts are; it is never re-sent once
// accepted.
func (r *runner) submitCheck(ctx context.Context, s *student, due time.Time) {
	p := r.cfg.Checks[rand.IntN(len(r.cfg.Checks))]
	s.mu.Lock()
	key := fmt.Sprintf("%s-check-%d-%d", r.runID, s.idx, s.nextCheck)
	s.nextCheck++
	s.mu.Unlock()
	var got client.CheckSubmission
	err := r.try(ctx, TaskCheck, due, func(ctx context.Context) error {
		var err error
		got, err = s.api.SubmitCheck(ctx, p.ExerciseID, p.Language, p.Source, client.WithIdempotencyKey(key))
		return err
	})
	sent := SentCheck{Key: key, StudentID: s.id, At: time.Now()}
	if err == nil {
		sent.Accepted, sent.CheckID = true, got.CheckID
	}
	r.checksMu.Lock()
	r.checks = append(r.checks, sent)
	r.checksMu.Unlock()
}

// sentChecks returns a copy of the checks submitted so far.
func (r *runner) sentChecks() []SentCheck {
	r.checksMu.Lock()
	defer r.checksMu.Unlock()
	return append([]SentCheck(nil), r.checks...)
}
