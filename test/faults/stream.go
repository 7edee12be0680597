package faults

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/app/apptest"
)

// AckFloor returns the consumer's ack floor, or fails t.
func AckFloor(t testing.TB, s *apptest.Stack) uint64 {
	t.Helper()
	floor, err := s.Log.AckFloor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return floor
}

// LastSeq returns the stream's last sequence, or fails t.
func LastSeq(t testing.TB, s *apptest.Stack) uint64 {
	t.Helper()
	stream, err := s.JS.Stream(t.Context(), s.Stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// StreamState is the stream's last sequence and the consumer's ack floor
// and unacknowledged count at one moment.
type StreamState struct {
	At      time.Time
	Floor   uint64
	Last    uint64
	Pending int
}

// State reads the stream's state within a second, or returns why it could
// not (NATS may be down or electing a leader: callers decide what that
// means).
func State(ctx context.Context, s *apptest.Stack) (StreamState, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st := StreamState{At: time.Now()}
	stream, err := s.JS.Stream(ctx, s.Stream.Name)
	if err != nil {
		return st, err
	}
	ci, err := ConsumerInfo(ctx, s)
	if err != nil {
		return st, err
	}
	st.Last = stream.CachedInfo().State.LastSeq
	st.Floor, st.Pending = ci.AckFloor.Stream, ci.NumAckPending
	return st, nil
}

// ConsumerInfo returns the consumer's info, or the error that kept it.
func ConsumerInfo(ctx context.Context, s *apptest.Stack) (*jetstream.ConsumerInfo, error) {
	c, err := s.JS.Consumer(ctx, s.Stream.Name, s.Stream.Consumer)
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}

// StreamInfo returns the stream's info, trying for up to 10s before it
// fails t.
func StreamInfo(t testing.TB, s *apptest.Stack) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	apptest.WaitFor(t, 10*time.Second, "the stream's info", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		st, err := s.JS.Stream(ctx, s.Stream.Name)
		if err == nil {
			info = st.CachedInfo()
		}
		return err == nil
	})
	return info
}

// Redeliveries returns how many deliveries the consumer made and how many
// of them were redeliveries: each delivery takes a consumer sequence, and
// every message of the stream was delivered at least once. It tries for
// up to 10s before it fails t.
func Redeliveries(t testing.TB, s *apptest.Stack) (deliveries, redeliveries uint64) {
	t.Helper()
	var ci *jetstream.ConsumerInfo
	apptest.WaitFor(t, 10*time.Second, "the consumer's info", func() bool {
		var err error
		ci, err = ConsumerInfo(t.Context(), s)
		return err == nil
	})
	return ci.Delivered.Consumer, ci.Delivered.Consumer - ci.Delivered.Stream
}

// Watch samples the stream's state every 100ms until the test ends.
type Watch struct {
	mu      sync.Mutex
	samples []StreamState
}

// StartWatch starts sampling the stack's stream; samples that fail (NATS
// down, say) are skipped.
func StartWatch(t testing.TB, s *apptest.Stack) *Watch {
	t.Helper()
	w := &Watch{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := State(ctx, s); err == nil {
				w.mu.Lock()
				w.samples = append(w.samples, st)
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// SettledAt returns when, after `after`, the ack floor first reached seq:
// every event up to seq stored (or set aside). It returns false when no
// sample shows it.
func (w *Watch) SettledAt(seq uint64, after time.Time) (time.Time, bool) {
	for _, smp := range w.Between(after, time.Now().Add(time.Hour)) {
		if smp.Floor >= seq {
			return smp.At, true
		}
	}
	return time.Time{}, false
}

// Sync waits until the watch has sampled the stream after this call, or
// fails t after 10s.
func (w *Watch) Sync(t testing.TB) {
	t.Helper()
	now := time.Now()
	apptest.WaitFor(t, 10*time.Second, "a sample of the stream's state", func() bool {
		return len(w.Between(now, now.Add(time.Hour))) > 0
	})
}

// Between returns the samples taken strictly between from and to, oldest
// first.
func (w *Watch) Between(from, to time.Time) []StreamState {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []StreamState
	for _, smp := range w.samples {
		if smp.At.After(from) && smp.At.Before(to) {
			out = append(out, smp)
		}
	}
	return out
}
