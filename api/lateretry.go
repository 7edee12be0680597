package api

import (
	"context"
	"errors"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

// storedAttempt looks up, before a keyed attempt is published, whether
// PostgreSQL already stores the attempt its key derives: a retry of an
// attempt older than the stream's MaxAge, whose per-attempt subject the
// stream no longer holds and whose guard would take the retry for new (a
// new submitted_at, or a second score where the key's other answers
// deserve a 422). It asks with RetryStatusTimeout (100ms) as its deadline,
// since the attempt POST must not depend on PostgreSQL: without an answer
// the attempt is published as before, and the stream's guard and
// duplicate window are the only check (docs/operations.md, "Late
// retries"). While the stream has removed no event (EventLog.Trimmed), it
// holds every original and its guard suffices: PostgreSQL is not asked.
// It returns the stored row and true when there is one.
func (s *Server) storedAttempt(ctx context.Context, ev events.AttemptSubmitted) (store.Attempt, bool) {
	if !s.events.Trimmed(ctx) {
		return store.Attempt{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RetryStatusTimeout)
	defer cancel()
	row, err := s.store.GetAttempt(ctx, ev.StudentID, ev.AttemptID)
	switch {
	case err == nil:
		return row, true
	case !errors.Is(err, store.ErrNotFound):
		s.log.Debug("api: late-retry lookup failed; publishing", "attempt_id", ev.AttemptID, "err", err)
	}
	return store.Attempt{}, false
}
