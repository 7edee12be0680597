package load_test

import (
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/store"
)

// TestOpenModelWindows: the open model's measured time split in windows,
// with code checks in the mix (no checker runs: they stay queued). Every
// measured try counts in one window, each window is told as it begins,
// and every accepted check is returned with its id.
func TestOpenModelWindows(t *testing.T) {
	url := startStack(t, true)
	var mu sync.Mutex
	var told []int
	var measureAt time.Time
	windows := []load.Window{{Name: "A", Duration: 700 * time.Millisecond}, {Name: "B", Duration: 500 * time.Millisecond}, {Name: "C", Duration: 600 * time.Millisecond}}
	res := run(t, load.Config{
		URL: url, Users: 4, Rate: 100, WarmUp: 200 * time.Millisecond, LagRate: -1, Windows: windows,
		Weights: load.Weights{Submit: 2, Progress: 1, Check: 1},
		Checks:  []load.CheckProgram{{ExerciseID: store.DemoExerciseSumID.String(), Language: "python", Source: "print(sum(map(int, input().split())))\n"}},
		OnPhase: func(p string) {
			if p == "measure" {
				mu.Lock()
				measureAt = time.Now()
				mu.Unlock()
			}
		},
		OnWindow: func(i int) {
			mu.Lock()
			told = append(told, i)
			if i == 0 && time.Since(measureAt) > 50*time.Millisecond {
				t.Errorf("window 0 told %s after the measured time began", time.Since(measureAt))
			}
			mu.Unlock()
		},
	})
	if res.Window != 1.8 {
		t.Errorf("measured %gs, want the windows' 1.8s", res.Window)
	}
	mu.Lock()
	if len(told) != 3 || told[0] != 0 || told[1] != 1 || told[2] != 2 {
		t.Errorf("OnWindow told %v, want [0 1 2]", told)
	}
	mu.Unlock()
	if len(res.Windows) != 3 {
		t.Fatalf("%d window results, want 3", len(res.Windows))
	}
	var sum int64
	for i, w := range res.Windows {
		if w.Name != windows[i].Name || w.Window != windows[i].Duration.Seconds() || len(w.Tasks) != 3 {
			t.Errorf("window %d: %s, %gs, %d tasks; want %s, %gs, 3", i, w.Name, w.Window, len(w.Tasks), windows[i].Name, windows[i].Duration.Seconds())
		}
		if w.Total.Requests == 0 {
			t.Errorf("window %s: no request", w.Name)
		}
		sum += w.Total.Requests
	}
	if sum != res.Total.Requests || res.Total.Errors != 0 {
		t.Errorf("the windows answered %d tries, the run %d (%d errors)", sum, res.Total.Requests, res.Total.Errors)
	}
	task, _ := res.Task(load.TaskCheck)
	ids := map[string]bool{}
	for _, c := range res.Checks {
		if !c.Accepted || c.CheckID == "" || c.StudentID == "" || ids[c.CheckID] {
			t.Errorf("check %+v: want accepted, with an id of its own", c)
		}
		ids[c.CheckID] = true
	}
	// The warm-up's checks are returned too, not measured.
	if task.Requests == 0 || int64(len(ids)) < task.Requests {
		t.Errorf("%d checks returned, %d measured", len(ids), task.Requests)
	}
	if v := res.Verify; v == nil || !v.OK {
		t.Errorf("check of the attempts: %+v", v)
	}
}
