package load

import (
	"math"
	"testing"
	"time"
)

// TestWindowStats: a try counts in the window its start falls in, in the
// run's total too, and in no window outside them; signups never do.
func TestWindowStats(t *testing.T) {
	s := newStats()
	start := time.Unix(1000, 0)
	ws := []Window{{Name: "A", Duration: time.Second}, {Name: "B", Duration: 2 * time.Second}, {Name: "C", Duration: time.Second}}
	s.setWindows(start, ws)
	s.setWindow(start, start.Add(4*time.Second))
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	s.record(TaskSubmit, at(-1), time.Millisecond, answered, nil)       // warm-up: nowhere
	s.record(TaskSubmit, at(0), 2*time.Millisecond, answered, nil)      // A
	s.record(TaskSubmit, at(999), 4*time.Millisecond, answered, nil)    // A
	s.record(TaskSubmit, at(1000), 100*time.Millisecond, answered, nil) // B
	s.record(TaskProgress, at(2500), 50*time.Millisecond, unavailable, nil)
	s.record(TaskProgress, at(2999), 8*time.Millisecond, answered, nil) // B
	s.record(TaskSubmit, at(3000), 3*time.Millisecond, failed, nil)     // C
	s.record(TaskSubmit, at(4000), time.Millisecond, answered, nil)     // after: nowhere
	s.record(TaskSignup, at(1500), time.Second, answered, nil)

	got := s.windowResults(ws, []string{TaskProgress, TaskSubmit})
	if len(got) != 3 {
		t.Fatalf("%d windows, want 3", len(got))
	}
	want := []struct {
		name                             string
		window                           float64
		submits, progress, unavail, errs int64
		submitMax                        float64
	}{
		{"A", 1, 2, 0, 0, 0, 4},
		{"B", 2, 1, 1, 1, 0, 100},
		{"C", 1, 0, 0, 0, 1, 0},
	}
	var total int64
	for i, w := range want {
		g := got[i]
		sub, _ := g.Task(TaskSubmit)
		prog, _ := g.Task(TaskProgress)
		if g.Name != w.name || g.Window != w.window || sub.Requests != w.submits || prog.Requests != w.progress ||
			prog.Unavailable != w.unavail || sub.Errors != w.errs || math.Abs(sub.Latency.Max-w.submitMax) > w.submitMax/1000 {
			t.Errorf("window %d: %s %gs, submit %+v, progress %+v; want %+v", i, g.Name, g.Window, sub, prog, w)
		}
		if g.Total.Requests != sub.Requests+prog.Requests {
			t.Errorf("window %s: total %d, want %d", g.Name, g.Total.Requests, sub.Requests+prog.Requests)
		}
		if g.Total.RPS != float64(g.Total.Requests)/w.window {
			t.Errorf("window %s: %g req/s for %d requests in %gs", g.Name, g.Total.RPS, g.Total.Requests, w.window)
		}
		total += g.Total.Requests
	}
	all, _ := s.result(TaskSubmit, 4*time.Second)
	prog, _ := s.result(TaskProgress, 4*time.Second)
	if total != all.Requests+prog.Requests {
		t.Errorf("the windows answered %d, the run %d", total, all.Requests+prog.Requests)
	}
}

func TestWindowStarts(t *testing.T) {
	start := time.Unix(50, 0)
	got := windowStarts(start, []Window{{Duration: time.Second}, {Duration: 3 * time.Second}, {Duration: time.Second}})
	want := []time.Time{start, start.Add(time.Second), start.Add(4 * time.Second)}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("window %d starts %v, want %v", i, got[i], want[i])
		}
	}
}
