package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quizstream/quizstream/retry"
)

var errFlaky = errors.New("flaky")

type waitErr struct{ d time.Duration }

func (e waitErr) Error() string             { return "busy" }
func (e waitErr) RetryAfter() time.Duration { return e.d }

func TestDoRetriesUntilSuccess(t *testing.T) {
	tries := 0
	err := retry.Do(t.Context(), retry.Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond}, retry.Always, nil, func() error {
		tries++
		if tries < 4 {
			return errFlaky
		}
		return nil
	})
	if err != nil || tries != 4 {
		t.Fatalf("err %v after %d tries, want nil after 4", err, tries)
	}
}

func TestDoStopsOnPermanentError(t *testing.T) {
	tries := 0
	permanent := errors.New("permanent")
	err := retry.Do(t.Context(), retry.Policy{Initial: time.Millisecond}, func(err error) bool { return err == errFlaky }, nil, func() error {
		tries++
		if tries == 1 {
			return errFlaky
		}
		return permanent
	})
	if !errors.Is(err, permanent) || tries != 2 {
		t.Fatalf("err %v after %d tries, want permanent after 2", err, tries)
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	tries := 0
	err := retry.Do(ctx, retry.Policy{Initial: time.Millisecond, Max: time.Millisecond}, retry.Always, nil, func() error {
		tries++
		if tries == 3 {
			cancel()
		}
		return errFlaky
	})
	if !errors.Is(err, errFlaky) || tries != 3 {
		t.Fatalf("err %v after %d tries, want the last error after 3", err, tries)
	}
}

func TestDoStopsAfterElapsed(t *testing.T) {
	err := retry.Do(t.Context(), retry.Policy{Initial: 5 * time.Millisecond, Max: 5 * time.Millisecond, Elapsed: 30 * time.Millisecond},
		retry.Always, nil, func() error { return errFlaky })
	if !errors.Is(err, errFlaky) {
		t.Fatalf("err %v, want the last error once Elapsed ran out", err)
	}
}

func TestDoHonoursRetryAfter(t *testing.T) {
	var pauses []time.Duration
	tries := 0
	err := retry.Do(t.Context(), retry.Policy{Initial: time.Millisecond, Max: time.Millisecond}, retry.Always,
		func(_ error, d time.Duration) { pauses = append(pauses, d) },
		func() error {
			tries++
			if tries == 1 {
				return waitErr{20 * time.Millisecond}
			}
			return nil
		})
	if err != nil || len(pauses) != 1 || pauses[0] != 20*time.Millisecond {
		t.Fatalf("err %v, pauses %v: want one pause of the server's 20ms", err, pauses)
	}
}
