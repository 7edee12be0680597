package readmodel_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/streams"
)

// TestWorkerKilledNoReadGoesBackwards SIGKILLs the worker process (the
// projection's consumer) again and again while students submit and read:
// a kill lands between a batch's commit and its folds, or amid them, and
// the batch comes back to the next worker. No read ever goes backwards:
// neither a student's progress through the API (their recorded attempts)
// nor a value of the model (its sequence, its attempt count). Once a last
// worker drained the stream, the model equals PostgreSQL.
func TestWorkerKilledNoReadGoesBackwards(t *testing.T) {
	t.Parallel()
	// A killed worker cannot Nak: its batch comes back after AckWait.
	s := apptest.New(t, streams.StreamConfig{AckWait: 2 * time.Second})
	in := s.StartAPI(t, api.Config{TokenMissRate: -1, TokenCacheTTL: 10 * time.Minute, AttemptRate: -1, MaxUnsettledPerStudent: -1})
	m, err := readmodel.Open(t.Context(), s.JS)
	if err != nil {
		t.Fatal(err)
	}
	people := apptest.NewStudents(t, s, "killed", 8)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var submitted, reads, modelReads atomic.Int64
	for i, st := range people {
		c := st.On(in.URL)
		wg.Go(func() { // submits
			for k := 0; ctx.Err() == nil; k++ {
				q := s.Quizzes[(i+k)%len(s.Quizzes)]
				_, err := c.SubmitAttempt(ctx, q.ID.String(), apptest.AnswersFor(q, k%len(q.Questions)),
					client.WithIdempotencyKey(fmt.Sprintf("killed-%d-%d", i, k)))
				if err == nil {
					submitted.Add(1)
				} else if ctx.Err() == nil {
					t.Errorf("submit: %v", err)
				}
			}
		})
		wg.Go(func() { // reads through the API: recorded attempts never fewer
			last := -1
			for ctx.Err() == nil {
				p, err := c.Progress(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("progress: %v", err)
					}
					return
				}
				n := 0
				for _, cp := range p.Courses {
					n += cp.Attempts
				}
				if n < last {
					t.Errorf("student %d: progress went back from %d to %d recorded attempts", i, last, n)
				}
				last = n
				reads.Add(1)
			}
		})
		wg.Go(func() { // reads of the model itself: seq and count never lower
			var lastSeq uint64
			lastTotal := 0
			for ctx.Err() == nil {
				v, _, err := m.Get(ctx, st.ID)
				switch {
				case errors.Is(err, readmodel.ErrMissing):
					if lastSeq > 0 {
						t.Errorf("student %d: the model lost its value (seq %d before)", i, lastSeq)
					}
					continue
				case err != nil:
					if ctx.Err() == nil {
						t.Errorf("model get: %v", err)
					}
					return
				}
				if v.Seq < lastSeq || v.Total < lastTotal {
					t.Errorf("student %d: the model went back from seq %d (%d attempts) to seq %d (%d)", i, lastSeq, lastTotal, v.Seq, v.Total)
				}
				lastSeq, lastTotal = v.Seq, v.Total
				modelReads.Add(1)
			}
		})
	}

	for kill := range 4 {
		floor, err := s.Log.AckFloor(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		w := s.Spawn(t, "worker")
		// Once it stores and folds, let it go on for a while, a little
		// longer each time, so that the kill lands amid its batches.
		apptest.WaitFor(t, 30*time.Second, "the worker to settle a batch", func() bool {
			f, err := s.Log.AckFloor(t.Context())
			return err == nil && f > floor
		})
		time.Sleep(time.Duration(100+150*kill) * time.Millisecond)
		if err := w.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill worker: %v", err)
		}
		if err := w.Wait(); err == nil {
			t.Fatal("killed worker exited cleanly")
		}
	}
	stop()
	wg.Wait()
	s.Spawn(t, "worker")
	s.WaitDrained(t, time.Minute)
	if submitted.Load() == 0 || reads.Load() == 0 || modelReads.Load() == 0 {
		t.Fatalf("submitted %d, read %d through the API and %d from the model: the test saw nothing",
			submitted.Load(), reads.Load(), modelReads.Load())
	}
	t.Logf("%d attempts submitted across 4 SIGKILLs; %d progress reads, %d model reads, none backwards",
		submitted.Load(), reads.Load(), modelReads.Load())
	modelEqualsPostgres(t, s, m, people)
}
