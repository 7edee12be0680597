package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// signupAll signs every student up, SignupConcurrency at a time, and
// returns those who could.
func (r *runner) signupAll(ctx context.Context) ([]*student, error) {
	if r.cfg.Floor != "" {
		return r.bareStudents(), nil
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.cfg.SignupConcurrency)
	for i := range r.cfg.Users {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.signup(ctx, i)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.studentsMu.Lock()
	defer r.studentsMu.Unlock()
	if len(r.students) == 0 {
		return nil, fmt.Errorf("load: no student could sign up: %v", r.stats.errorSamples())
	}
	return append([]*student(nil), r.students...), nil
}

// closed signs every student up, then runs each one's loop, task after
// task, their starts spread over Ramp, until the measured window ends.
func (r *runner) closed(ctx context.Context) error {
	students, err := r.signupAll(ctx)
	if err != nil {
		return err
	}
	begin := time.Now()
	start := begin.Add(r.cfg.Ramp + r.cfg.WarmUp)
	end := start.Add(r.cfg.Duration)
	r.stats.setWindows(start, r.cfg.Windows)
	r.stats.setWindow(start, end)
	if r.cfg.Ramp+r.cfg.WarmUp > 0 {
		r.setPhase("warmup")
	}
	var wg sync.WaitGroup
	for i, s := range students {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleep(ctx, time.Duration(i)*r.cfg.Ramp/time.Duration(len(students))) {
				return
			}
			for ctx.Err() == nil && time.Now().Before(end) {
				r.runTask(ctx, s, time.Now())
				if r.cfg.ThinkTime > 0 {
					think := r.cfg.ThinkTime/2 + rand.N(r.cfg.ThinkTime+1)
					if !sleep(ctx, think) {
						return
					}
				}
			}
		}()
	}
	if sleep(ctx, time.Until(start)) {
		r.setPhase("measure")
		for i, at := range windowStarts(start, r.cfg.Windows) {
			if !sleep(ctx, time.Until(at)) {
				break
			}
			r.enterWindow(i)
		}
		sleep(ctx, time.Until(end))
	}
	r.setPhase("finish")
	wg.Wait()
	r.window = r.cfg.Duration
	return ctx.Err()
}

// open signs every student up, then starts tasks at the configured rate,
// each for a student drawn at random.
func (r *runner) open(ctx context.Context) error {
	students, err := r.signupAll(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	start := time.Now()
	measureStart := start.Add(r.cfg.WarmUp)
	end := measureStart.Add(r.cfg.Duration)
	r.stats.setWindows(measureStart, r.cfg.Windows)
	r.stats.setWindow(measureStart, end)
	windows, next := windowStarts(measureStart, r.cfg.Windows), 0
	if r.cfg.WarmUp > 0 {
		r.setPhase("warmup")
	} else {
		r.setPhase("measure")
	}
	inflight := make(chan struct{}, r.cfg.MaxInFlight)
	perArrival := float64(time.Second) / r.cfg.Rate
	for i := 0; ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(float64(i) * perArrival))
		if !due.Before(end) {
			break
		}
		if wait := time.Until(due); wait > 0 {
			// Several arrivals may be due per wake-up at high rates; each
			// keeps its own due time.
			sleep(ctx, wait)
		}
		if !due.Before(measureStart) && r.phase.Load() == "warmup" {
			r.setPhase("measure")
		}
		for ; next < len(windows) && !due.Before(windows[next]); next++ {
			r.enterWindow(next)
		}
		select {
		case inflight <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		if time.Since(due) > lateAfter && r.stats.inWindow(due) {
			r.late.Add(1)
		}
		s := students[rand.IntN(len(students))]
		wg.Add(1)
		r.inFlight.Add(1)
		go func() {
			defer func() { <-inflight; r.inFlight.Add(-1); wg.Done() }()
			r.runTask(ctx, s, due)
		}()
	}
	r.setPhase("finish")
	wg.Wait()
	r.window = r.cfg.Duration
	return ctx.Err()
}

// enterWindow tells Config.OnWindow that window i begins.
func (r *runner) enterWindow(i int) {
	if r.cfg.OnWindow != nil {
		r.cfg.OnWindow(i)
	}
}

// lateAfter is how late an open-model arrival may be sent before it
// counts as late: timer wake-ups alone take up to a millisecond or so.
const lateAfter = 5 * time.Millisecond

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
