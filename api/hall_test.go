package api_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
)

// hallSize is how many students the hall test lets in from one address.
const hallSize = 300

// A hall behind one NAT gets in with the default limits: hallSize students
// from one address, each with a browser's own connections, sign up and
// log in without one 429 or 503. (A refused student tries again after
// Retry-After, as a person would, so that the time the hall takes is
// logged whatever the limits; the test fails on the first refusal all
// the same.) They arrive as fast as the API hashes
// passwords (half the CPUs at once, one more waiting): a hash refused for
// want of CPU (503 past HASH_WAIT) is capacity, not the address's limits,
// which this test is about.
func TestHallBehindOneAddress(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{HashWait: time.Minute}) // the package's other tests hash at the same time
	ctx, statuses := apptest.Statuses(t.Context())
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		slots = make(chan struct{}, api.DefaultHashConcurrency()+1)
	)
	start := time.Now()
	for i := range hallSize {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			c := apptest.ClientFrom(in.URL, from(9)) // a browser of its own, the hall's address
			email := fmt.Sprintf("hall-%03d@example.com", i)
			err := func(ctx context.Context) error {
				if err := patiently(ctx, func() error {
					_, _, err := c.Signup(ctx, email, "Student", "correct horse")
					return err
				}); err != nil {
					return fmt.Errorf("signup %s: %w", email, err)
				}
				if err := patiently(ctx, func() error {
					_, err := c.Login(ctx, email, "correct horse")
					return err
				}); err != nil {
					return fmt.Errorf("login %s: %w", email, err)
				}
				return nil
			}(ctx)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	got := map[int]int{}
	for _, st := range statuses() {
		got[st]++
	}
	t.Logf("%d students from one address signed up and logged in in %s: statuses %v", hallSize, took.Round(time.Millisecond), got)
	if len(errs) > 0 {
		t.Errorf("%d students not let in, first: %v", len(errs), errs[0])
	}
	if want := map[int]int{http.StatusCreated: hallSize, http.StatusOK: hallSize}; !maps.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
}

// patiently calls call again after the Retry-After of each 429 or 503.
func patiently(ctx context.Context, call func() error) error {
	for {
		err := call()
		var e *client.Error
		if !errors.As(err, &e) || (e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable) {
			return err
		}
		select {
		case <-time.After(max(e.RetryAfterDelay, 100*time.Millisecond)):
		case <-ctx.Done():
			return err
		}
	}
}
