// Package load drives a quizstream API the way exam day does, through the
// project's own client: virtual students sign up, then run a weighted mix
// of tasks (content reads, their own user, progress and attempts, attempt
// POSTs with an Idempotency-Key, some re-sent), either as a closed loop of
// students or at a constant arrival rate. It measures every HTTP try in HDR
// histograms per task, and afterwards checks that every attempt answered
// 202 is recorded exactly once, with the score and submitted_at of its 202,
// and that progress agrees.
//
// Latency is that of each try: the client's own retries are off, and the
// tool tries again itself (with the same Idempotency-Key) after a 503, a
// 429 or a transport error, counting those apart. In the open model a
// task's first try is timed from when it was due, not from when it could
// be sent, so a server that falls behind is charged for its queue.
package load

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/retry"
)

// Result is what a run measured and, unless skipped, what the check after
// it found.
type Result struct {
	Mode      string  `json:"mode"` // "closed" or "open"
	Users     int     `json:"users"`
	Rate      float64 `json:"rate,omitempty"` // the open model's target, tasks/s
	Weights   Weights `json:"weights"`
	ThinkTime float64 `json:"think_time_s"`
	WarmUp    float64 `json:"warm_up_s"`
	// Window is the measured window's length, in seconds.
	Window float64 `json:"window_s"`
	// Tasks lists the mix's tasks (those of weight > 0) in a fixed order.
	Tasks []TaskResult `json:"tasks"`
	// Total merges the tasks of the mix.
	Total TaskResult `json:"total"`
	// Signup is every student's signup (always measured).
	Signup TaskResult `json:"signup"`
	// Accepted counts the 202s of the measured window, re-sends included;
	// Resends counts the re-sends of accepted attempts with the same key.
	Accepted int64 `json:"accepted"`
	Resends  int64 `json:"resends"`
	// Late counts the open model's arrivals that were sent more than 5ms
	// after they were due (all tasks were in flight, or the generator was
	// short of CPU); their wait is in their latency.
	Late int64 `json:"late,omitempty"`
	// Lag is the time from a sampled 202 to the first read of that
	// attempt as recorded (an upper bound, within LagPoll).
	Lag         Latency `json:"lag_to_recorded"`
	LagTimedOut int64   `json:"lag_timed_out"`
	// LagPolls counts the reads of followed attempts (not in Tasks);
	// LagPollErrors those that failed, which count as not yet recorded.
	LagPolls      int64 `json:"lag_polls"`
	LagPollErrors int64 `json:"lag_poll_errors"`
	// Verify is the check after the run; nil when it was skipped (or for
	// the exam workload, whose check is Exam.Verify).
	Verify *Verification `json:"verify,omitempty"`
	// Windows are Config.Windows' figures, in order.
	Windows []WindowResult `json:"windows,omitempty"`
	// Checks are the checks the check task submitted, in the order they
	// ended; they stay out of the JSON (the caller checks them against
	// what the service stored).
	Checks []SentCheck `json:"-"`
	// Exam is the exam workload's figures; nil for the mix.
	Exam *ExamResult `json:"exam,omitempty"`
	// ErrorSamples holds the first failures' messages.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// Task returns the result of the named task, and false when the run had
// none.
func (r Result) Task(name string) (TaskResult, bool) {
	for _, t := range r.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return TaskResult{}, false
}

// Progress is a run's state, reported once a second.
type Progress struct {
	Elapsed time.Duration
	// Phase is "signup", "warmup", "measure", "finish" (waiting for the
	// tasks in flight) or "verify"; the exam workload's are "signup",
	// "login", "exam", "finish" and "verify".
	Phase string
	// Students counts the students signed up so far.
	Students int
	// RPS and P99 are of the last second's answered tries, all tasks,
	// measured or not; Failures are that second's failed tries.
	RPS      float64
	P99      time.Duration
	Failures int64
	// Unavailable counts every 503 and 429 so far; Accepted every 202 of a
	// first submission (re-sends left out), warm-up included.
	Unavailable int64
	Accepted    int64
	InFlight    int64
}

// String is the progress line.
func (p Progress) String() string {
	return fmt.Sprintf("load: %5.0fs %-7s students %d  %6.0f req/s  p99 %6.1fms  fail/s %d  503+429 %d  202 %d  in flight %d",
		p.Elapsed.Seconds(), p.Phase, p.Students, p.RPS, float64(p.P99.Microseconds())/1000, p.Failures,
		p.Unavailable, p.Accepted, p.InFlight)
}

// Run signs the students up, runs the load, then checks what it stored.
// It returns an error when the API cannot be set up against (no content,
// no student could sign up) or ctx ended; failures of single requests are
// counted in the Result, not returned.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 0
		tr.MaxIdleConnsPerHost = cfg.Users + 16
		if cfg.Rate > 0 {
			tr.MaxIdleConnsPerHost = cfg.MaxInFlight + 16
		}
		hc = &http.Client{Transport: tr}
		defer hc.CloseIdleConnections()
	}
	var addrs *sourceAddrs
	if cfg.HTTPClient == nil && !cfg.SingleAddr && isLoopback(cfg.URL) {
		addrs = &sourceAddrs{perStudent: max(2, cfg.MaxInFlight/cfg.Users+2)}
		if cfg.Rate == 0 {
			addrs.perStudent = 2
		}
		defer addrs.close()
	}
	r := &runner{
		addrs: addrs,
		cfg:   cfg,
		stats: newStats(),
		// One try per call: the runner retries itself, so that each try is
		// timed and 503s are seen.
		api:     client.New(cfg.URL, client.Options{HTTPClient: hc, Policy: retry.Policy{Elapsed: time.Nanosecond}, Deadline: cfg.RequestTimeout}),
		patient: client.New(cfg.URL, client.Options{HTTPClient: hc}),
		lag:     &lagStats{hist: newHist()},
		start:   time.Now(),
	}
	r.setPhase("signup")
	for _, w := range cfg.Weights.list() {
		r.cum = append(r.cum, w+lastOr0(r.cum))
	}
	if err := r.loadContent(ctx); err != nil {
		return Result{}, err
	}

	stopProgress := r.reportProgress()
	var err error
	switch {
	case cfg.Exam != nil:
		err = r.exam(ctx)
	case cfg.Rate > 0:
		err = r.open(ctx)
	default:
		err = r.closed(ctx)
	}
	r.setPhase("finish")
	r.lagWG.Wait()
	switch {
	case err != nil || cfg.SkipVerify:
	case cfg.Exam != nil:
		r.setPhase("verify")
		var v ExamVerification
		v, err = r.verifyExam(ctx)
		r.result.Exam.Verify = &v
	default:
		r.setPhase("verify")
		var v Verification
		v, err = r.verify(ctx)
		r.result.Verify = &v
	}
	stopProgress()
	if err != nil {
		return Result{}, err
	}
	return r.finish(), nil
}

func lastOr0(s []int) int {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// runner is one run's state.
type runner struct {
	cfg     Config
	addrs   *sourceAddrs   // nil: every student shares the default address
	api     *client.Client // no retries: every try is timed
	patient *client.Client // the client's own retries: for setup and the check
	stats   *stats
	lag     *lagStats
	lagWG   sync.WaitGroup
	start   time.Time
	phase   atomic.Value // string
	cum     []int        // cumulative weights of mixTasks

	content content
	runID   string

	studentsMu sync.Mutex
	students   []*student
	signedUp   atomic.Int64

	checksMu sync.Mutex
	checks   []SentCheck // the check task's, as they ended

	accepted, resends, late, inFlight atomic.Int64
	acceptedAll                       atomic.Int64 // every 202, for the progress line
	window                            time.Duration
	result                            Result
	examRun                           *examRun // the exam workload's state; nil for the mix
}

// student is one virtual student: who it is and what it was told.
type student struct {
	idx   int
	id    string
	email string
	base  *client.Client // this student's connections, without a token
	api   *client.Client // as this student, without retries
	own   *client.Client // as this student, with the client's retries

	mu    sync.Mutex
	etags map[string]string
	next  int
	sent  map[string]*submission // by Idempotency-Key: every key sent
	// nextCheck numbers the student's checks' Idempotency-Keys.
	nextCheck int
}

// submission is one logical attempt POST and what its 202 said.
type submission struct {
	quiz     string
	answers  []client.Answer
	accepted bool // a 202 was heard
	attempt  client.Attempt
}

func (r *runner) reportProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n, fails, p99 := r.stats.tick()
				r.cfg.Progress(Progress{
					Elapsed: now.Sub(r.start), Phase: r.phase.Load().(string), Students: int(r.signedUp.Load()),
					RPS: float64(n) / now.Sub(last).Seconds(), P99: p99, Failures: fails,
					Unavailable: r.stats.unavailable.Load(), Accepted: r.acceptedAll.Load(), InFlight: r.inFlight.Load(),
				})
				last = now
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// setPhase moves the run to phase p, telling Config.OnPhase.
func (r *runner) setPhase(p string) {
	if old, _ := r.phase.Swap(p).(string); old != p && r.cfg.OnPhase != nil {
		r.cfg.OnPhase(p)
	}
}

// finish gathers the Result.
func (r *runner) finish() Result {
	res := r.result
	c := r.cfg
	res.Mode, res.Users, res.Rate, res.Weights = c.Mode(), c.Users, c.Rate, c.Weights
	if c.Exam != nil || c.Floor != "" {
		res.Weights = Weights{}
	}
	res.ThinkTime, res.WarmUp, res.Window = c.ThinkTime.Seconds(), c.WarmUp.Seconds(), r.window.Seconds()
	tasks := mixTasks
	switch {
	case c.Exam != nil:
		tasks = examTasks
	case c.Floor != "":
		tasks = []string{TaskFloor}
	}
	var names []string
	for i, name := range tasks {
		if c.Exam == nil && c.Floor == "" && c.Weights.list()[i] == 0 {
			continue
		}
		names = append(names, name)
	}
	res.Tasks, res.Total = tasksOf(names, r.window, func(name string) *taskStats { return r.stats.tasks[name] })
	res.Windows = r.stats.windowResults(c.Windows, names)
	res.Checks = r.sentChecks()
	res.Signup, _ = r.stats.result(TaskSignup, 0)
	res.Accepted, res.Resends, res.Late = r.accepted.Load(), r.resends.Load(), r.late.Load()
	r.lag.mu.Lock()
	res.Lag, res.LagTimedOut = latencyOf(r.lag.hist), r.lag.timedOut
	r.lag.mu.Unlock()
	res.LagPolls, res.LagPollErrors = r.lag.polls.Load(), r.lag.pollErrors.Load()
	res.ErrorSamples = r.stats.errorSamples()
	r.finishExam(&res)
	return res
}
