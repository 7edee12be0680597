package faults

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
)

// Steady is every client submitting keyed attempts, one after the other
// and as fast as answered, until Halt: each 202 is recorded in the ledger,
// other statuses and transport errors (a closed listener) are counted
// apart, and nothing is retried.
type Steady struct {
	wg       sync.WaitGroup
	stop     chan struct{}
	halt     sync.Once
	accepted atomic.Int64
	statuses sync.Map // status -> *atomic.Int64, every non-202 answer
	refused  atomic.Int64
}

// StartSteady starts the clients submitting, with Idempotency-Keys made
// from prefix; it is halted when t ends if not before. A retry answered
// differently from the first 202 fails t.
func StartSteady(t testing.TB, s *apptest.Stack, clients []*client.Client, l *Ledger, prefix string) *Steady {
	ld := &Steady{stop: make(chan struct{})}
	ctx := t.Context()
	for ci, c := range clients {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for i := 0; i < 20000; i++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				q := s.Quizzes[(ci+i)%len(s.Quizzes)]
				key := fmt.Sprintf("%s-%d-%d", prefix, ci, i)
				status, body, err := Submit(ctx, c, q.ID.String(), key, apptest.AnswersFor(q, i%11))
				switch {
				case err != nil:
					ld.refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				case status == http.StatusAccepted:
					ld.accepted.Add(1)
					if err := l.Add(key, body); err != nil {
						t.Error(err)
					}
				default:
					n, _ := ld.statuses.LoadOrStore(status, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
			}
		}()
	}
	t.Cleanup(ld.Halt)
	return ld
}

// Halt stops the clients and waits for their requests in flight; it may
// be called more than once.
func (ld *Steady) Halt() {
	ld.halt.Do(func() { close(ld.stop) })
	ld.wg.Wait()
}

// Accepted returns how many submissions were answered 202 so far.
func (ld *Steady) Accepted() int64 { return ld.accepted.Load() }

// Refused returns how many submissions met a transport error so far.
func (ld *Steady) Refused() int64 { return ld.refused.Load() }

// Others returns how many times each status other than 202 was answered.
func (ld *Steady) Others() map[int]int64 {
	out := map[int]int64{}
	ld.statuses.Range(func(k, v any) bool { out[k.(int)] = v.(*atomic.Int64).Load(); return true })
	return out
}
