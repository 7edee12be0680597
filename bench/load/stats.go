package load

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms hold microseconds from 1µs to 5 minutes at 3 significant
// digits; a longer latency is clamped to the maximum.
const (
	histMin     = 1
	histMax     = int64(5 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSigFigs) }

func recordHist(h *hdrhistogram.Histogram, d time.Duration) {
	us := min(max(d.Microseconds(), histMin), histMax)
	_ = h.RecordValue(us) // in range by construction
}

// Latency is a latency distribution, in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p99_9_ms"`
	Max    float64 `json:"max_ms"`
	Mean   float64 `json:"mean_ms"`
	Stddev float64 `json:"stddev_ms"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()), Mean: h.Mean() / 1000, Stddev: h.StdDev() / 1000,
	}
}

// TaskResult is what one task did in the measured window. Latencies are
// those of answered tries (2xx and 304), each try on its own; 503 and 429
// answers are counted, not timed.
type TaskResult struct {
	Name string `json:"name"`
	// Requests counts answered tries (2xx, 304).
	Requests int64 `json:"requests"`
	// NotModified counts the 304s among them.
	NotModified int64 `json:"not_modified,omitempty"`
	// Unavailable and RateLimited count 503 and 429 answers (each was
	// tried again, up to Config.MaxTries).
	Unavailable int64 `json:"unavailable_503"`
	RateLimited int64 `json:"rate_limited_429"`
	// Errors counts every other failure: another status, a transport
	// error, a wrong answer (another student's data).
	Errors int64 `json:"errors"`
	// RPS is Requests per second of the measured window.
	RPS     float64 `json:"rps"`
	Latency Latency `json:"latency"`
}

// taskStats accumulates one task.
type taskStats struct {
	mu                                                 sync.Mutex
	hist                                               *hdrhistogram.Histogram
	requests, notModified, unavailable, limited, fails int64
}

// stats is every task's figures, those of the current second (for the
// progress line), and the measured window.
type stats struct {
	tasks map[string]*taskStats
	// windowStart and windowEnd are UnixNano; 0 until the window is known.
	windowStart, windowEnd atomic.Int64
	// windows split the measured window (Config.Windows); set before
	// windowStart, read only after it.
	windows []*windowStats

	mu       sync.Mutex
	interval *hdrhistogram.Histogram // every answered try this second, measured or not
	ivCount  int64
	ivFails  int64

	errMu   sync.Mutex
	samples []string
	// totals across every try (measured or not), for the progress line
	answered, unavailable, failed atomic.Int64
}

const maxErrorSamples = 20

func newStats() *stats {
	s := &stats{tasks: map[string]*taskStats{}, interval: newHist()}
	for _, name := range append(append([]string{TaskSignup, TaskFloor}, mixTasks...), examTasks...) {
		s.tasks[name] = &taskStats{hist: newHist()}
	}
	return s
}

func (s *stats) setWindow(start, end time.Time) {
	s.windowEnd.Store(end.UnixNano())
	s.windowStart.Store(start.UnixNano())
}

// measured reports whether a try that started (or was due) at t falls in
// the measured window; signups are always measured.
func (s *stats) measured(task string, t time.Time) bool {
	return task == TaskSignup || s.inWindow(t)
}

// inWindow reports whether t falls in the measured window.
func (s *stats) inWindow(t time.Time) bool {
	start := s.windowStart.Load()
	n := t.UnixNano()
	return start != 0 && n >= start && n < s.windowEnd.Load()
}

type outcome int

const (
	answered outcome = iota
	notModified
	unavailable
	rateLimited
	failed
)

// record accounts one try of task that started (or was due) at start and
// ended d later.
func (s *stats) record(task string, start time.Time, d time.Duration, o outcome, err error) {
	switch o {
	case answered, notModified:
		s.answered.Add(1)
		s.mu.Lock()
		recordHist(s.interval, d)
		s.ivCount++
		s.mu.Unlock()
	case unavailable, rateLimited:
		s.unavailable.Add(1)
	case failed:
		s.failed.Add(1)
		s.mu.Lock()
		s.ivFails++
		s.mu.Unlock()
		s.errMu.Lock()
		if len(s.samples) < maxErrorSamples {
			s.samples = append(s.samples, fmt.Sprintf("%s: %v", task, err))
		}
		s.errMu.Unlock()
	}
	if !s.measured(task, start) {
		return
	}
	s.tasks[task].add(o, d)
	if task == TaskSignup {
		return // measured whatever the window, so before windows are set
	}
	if w := s.windowOf(start); w != nil {
		w.tasks[task].add(o, d)
	}
}

// add accounts one try.
func (t *taskStats) add(o outcome, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch o {
	case answered, notModified:
		t.requests++
		recordHist(t.hist, d)
		if o == notModified {
			t.notModified++
		}
	case unavailable:
		t.unavailable++
	case rateLimited:
		t.limited++
	case failed:
		t.fails++
	}
}

// tick returns the last second's answered tries, failures and p99, and
// starts a new second.
func (s *stats) tick() (n, fails int64, p99 time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, fails = s.ivCount, s.ivFails
	if n > 0 {
		p99 = time.Duration(s.interval.ValueAtQuantile(99)) * time.Microsecond
	}
	s.interval.Reset()
	s.ivCount, s.ivFails = 0, 0
	return n, fails, p99
}

// result returns task's figures over a window of the given length, and
// a copy of its histogram for merging.
func (s *stats) result(task string, window time.Duration) (TaskResult, *hdrhistogram.Histogram) {
	return s.tasks[task].result(task, window)
}

func (t *taskStats) result(task string, window time.Duration) (TaskResult, *hdrhistogram.Histogram) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := TaskResult{
		Name: task, Requests: t.requests, NotModified: t.notModified,
		Unavailable: t.unavailable, RateLimited: t.limited, Errors: t.fails,
		Latency: latencyOf(t.hist),
	}
	if window > 0 {
		r.RPS = float64(t.requests) / window.Seconds()
	}
	return r, hdrhistogram.Import(t.hist.Export())
}

func (s *stats) errorSamples() []string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return append([]string(nil), s.samples...)
}

// lagStats collects the lag from a 202 to reading the attempt as recorded.
type lagStats struct {
	mu         sync.Mutex
	hist       *hdrhistogram.Histogram
	timedOut   int64
	polls      atomic.Int64
	pollErrors atomic.Int64
	last       atomic.Int64 // UnixNano of the last sample taken
}

func (l *lagStats) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recordHist(l.hist, d)
}
