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
// from one address, each with a browser's own connection, sign up at once
// and then log in at once, without one 429 or 503. How fast this machine
// hashes is capacity, not the address's limits, which this test is about:
// the API hashes at argon2id's lowest cost (600 hashes at the real cost
// would take the CPU the package's other tests hash with), and is given
// all the time it needs (HASH_WAIT and WRITE_TIMEOUT of minutes). (A refused student tries again after Retry-After, as
// a person would, so that the time the hall takes is logged whatever the
// limits; the test fails on the first refusal all the same.)
func TestHallBehindOneAddress(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.CheapHashes(api.Config{HashWait: 10 * time.Minute, WriteTimeout: 10 * time.Minute}))
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	ctx, statuses := apptest.Statuses(ctx)
	clients := make([]*client.Client, hallSize)
	for i := range clients {
		// A browser of its own, from the hall's address, that waits as long
		// as the API takes to hash.
		clients[i] = client.New(in.URL, client.Options{HTTPClient: apptest.HTTPClientFrom(from(9)), Deadline: -1})
	}
	email := func(i int) string { return fmt.Sprintf("hall-%03d@example.com", i) }
	all := func(what string, call func(i int) error) {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		start := time.Now()
		for i := range hallSize {
			wg.Go(func() {
				if err := patiently(ctx, func() error { return call(i) }); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s %s: %w", what, email(i), err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		t.Logf("%d %ss from one address at once: %s", hallSize, what, time.Since(start).Round(time.Millisecond))
		if len(errs) > 0 {
			t.Errorf("%d students not let in, first: %v", len(errs), errs[0])
		}
	}
	all("signup", func(i int) error {
		_, _, err := clients[i].Signup(ctx, email(i), "Student", "correct horse")
		return err
	})
	all("login", func(i int) error {
		_, err := clients[i].Login(ctx, email(i), "correct horse")
		return err
	})
	got := map[int]int{}
	for _, st := range statuses() {
		got[st]++
	}
	t.Logf("statuses %v", got)
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
