package load

import "time"

// Window is one part of a run's measured time (Config.Windows): the load
// stays the same across windows, so that what the caller changes between
// them (a dependency taken down, say) is all that differs.
type Window struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// WindowResult is what the tasks did in one window: a try counts in the
// window it started (or was due) in.
type WindowResult struct {
	Name string `json:"name"`
	// Window is the window's length, in seconds.
	Window float64      `json:"window_s"`
	Tasks  []TaskResult `json:"tasks"`
	Total  TaskResult   `json:"total"`
}

// Task returns the window's result of the named task, and false when it
// had none.
func (w WindowResult) Task(name string) (TaskResult, bool) {
	for _, t := range w.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return TaskResult{}, false
}

// windowStats accumulates the tasks of one window, [start, end) in
// UnixNano.
type windowStats struct {
	start, end int64
	tasks      map[string]*taskStats
}

// setWindows splits the measured window, from start, into ws. It must be
// called before setWindow, whose store publishes the windows to record.
func (s *stats) setWindows(start time.Time, ws []Window) {
	at := start.UnixNano()
	for _, w := range ws {
		x := &windowStats{start: at, end: at + int64(w.Duration), tasks: map[string]*taskStats{}}
		for name := range s.tasks {
			x.tasks[name] = &taskStats{hist: newHist()}
		}
		s.windows = append(s.windows, x)
		at = x.end
	}
}

// windowOf returns the window a try that started (or was due) at t falls
// in, or nil.
func (s *stats) windowOf(t time.Time) *windowStats {
	n := t.UnixNano()
	for _, w := range s.windows {
		if n >= w.start && n < w.end {
			return w
		}
	}
	return nil
}

// windowResults returns every window's figures, tasks as in names.
func (s *stats) windowResults(ws []Window, names []string) []WindowResult {
	var out []WindowResult
	for i, w := range s.windows {
		res := WindowResult{Name: ws[i].Name, Window: ws[i].Duration.Seconds()}
		res.Tasks, res.Total = tasksOf(names, ws[i].Duration, func(name string) *taskStats { return w.tasks[name] })
		out = append(out, res)
	}
	return out
}

// tasksOf returns the named tasks' results over a window of the given
// length, and their total, from the accumulators get returns.
func tasksOf(names []string, window time.Duration, get func(string) *taskStats) ([]TaskResult, TaskResult) {
	var tasks []TaskResult
	total := TaskResult{Name: "total"}
	all := newHist()
	for _, name := range names {
		t, h := get(name).result(name, window)
		tasks = append(tasks, t)
		all.Merge(h)
		total.Requests += t.Requests
		total.NotModified += t.NotModified
		total.Unavailable += t.Unavailable
		total.RateLimited += t.RateLimited
		total.Errors += t.Errors
	}
	total.Latency = latencyOf(all)
	if window > 0 {
		total.RPS = float64(total.Requests) / window.Seconds()
	}
	return tasks, total
}

// windowStarts returns when each window begins, the first at start.
func windowStarts(start time.Time, ws []Window) []time.Time {
	out := make([]time.Time, len(ws))
	for i, w := range ws {
		out[i] = start
		start = start.Add(w.Duration)
	}
	return out
}
