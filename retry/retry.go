// Package retry is quizstream's one retry policy: exponential backoff with
// jitter (cenkalti/backoff v4), a classifier that says which errors are
// worth another try, and a server's Retry-After honoured when an error
// carries one. The worker, the batch writer, replay and the HTTP client
// all retry through Do.
package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy says how long to wait between tries and for how long to try.
type Policy struct {
	// Initial is the first pause. Defaults to 50ms.
	Initial time.Duration
	// Max caps one pause (before a Retry-After, which may be longer).
	// Defaults to 2s.
	Max time.Duration
	// Elapsed bounds the whole retry; 0 retries until ctx ends.
	Elapsed time.Duration
}

// Always is a classifier that retries every error: for failures that go
// away by themselves, such as a fetch from a server that is restarting.
func Always(error) bool { return true }

// RetryAfterer is an error that knows how long the server asked to wait.
type RetryAfterer interface {
	RetryAfter() time.Duration
}

// Do runs op until it returns nil, an error that retryable refuses, or ctx
// ends or the policy's Elapsed runs out; it returns op's last error (ctx's
// error when ctx ended before any try failed). notify, when set, hears each
// failure and the pause before the next try.
func Do(ctx context.Context, p Policy, retryable func(error) bool, notify func(err error, next time.Duration), op func() error) error {
	b := p.backOff()
	var last error
	for {
		err := op()
		if err == nil {
			return nil
		}
		last = err
		if !retryable(err) {
			return err
		}
		next := b.NextBackOff()
		if next == backoff.Stop {
			return err
		}
		var ra RetryAfterer
		if errors.As(err, &ra) && ra.RetryAfter() > next {
			next = ra.RetryAfter()
		}
		if notify != nil {
			notify(err, next)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			if last != nil {
				return last
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (p Policy) backOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	if b.InitialInterval <= 0 {
		b.InitialInterval = 50 * time.Millisecond
	}
	b.MaxInterval = p.Max
	if b.MaxInterval <= 0 {
		b.MaxInterval = 2 * time.Second
	}
	b.MaxElapsedTime = p.Elapsed
	b.Reset()
	return b
}
