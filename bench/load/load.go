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
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
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
	// Verify is the check after the run; nil when it was skipped.
	Verify *Verification `json:"verify,omitempty"`
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
	// tasks in flight) or "verify".
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
	if cfg.Rate > 0 {
		err = r.open(ctx)
	} else {
		err = r.closed(ctx)
	}
	r.setPhase("finish")
	r.lagWG.Wait()
	if err == nil && !cfg.SkipVerify {
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

	accepted, resends, late, inFlight atomic.Int64
	acceptedAll                       atomic.Int64 // every 202, for the progress line
	window                            time.Duration
	result                            Result
}

// student is one virtual student: who it is and what it was told.
type student struct {
	idx int
	id  string
	api *client.Client // as this student, without retries
	own *client.Client // as this student, with the client's retries

	mu    sync.Mutex
	etags map[string]string
	next  int
	sent  map[string]*submission // by Idempotency-Key: every key sent
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

// signupAll signs every student up, SignupConcurrency at a time, and
// returns those who could.
func (r *runner) signupAll(ctx context.Context) ([]*student, error) {
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
	r.stats.setWindow(measureStart, end)
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

// signup creates student i; it returns nil (and counts the failure) when
// the API refused.
func (r *runner) signup(ctx context.Context, i int) *student {
	email := fmt.Sprintf("load-%s-%d@example.com", r.runID, i)
	var st client.Student
	var token string
	api := r.api
	if r.addrs != nil {
		api = client.New(r.cfg.URL, client.Options{HTTPClient: r.addrs.client(i), Policy: retry.Policy{Elapsed: time.Nanosecond}, Deadline: r.cfg.RequestTimeout})
	}
	err := r.try(ctx, TaskSignup, time.Now(), func(ctx context.Context) error {
		var err error
		st, token, err = api.Signup(ctx, email, fmt.Sprintf("Load %d", i), "load test password")
		if client.IsCode(err, client.CodeConflict) {
			// A try whose answer was lost created the account: log in.
			token, err = api.Login(ctx, email, "load test password")
			if err == nil {
				st, err = api.WithToken(token).User(ctx)
			}
		}
		return err
	})
	if err != nil {
		return nil
	}
	s := &student{
		idx: i, id: st.ID, api: api.WithToken(token), own: r.patient.WithToken(token),
		etags: map[string]string{}, sent: map[string]*submission{},
	}
	r.studentsMu.Lock()
	r.students = append(r.students, s)
	r.studentsMu.Unlock()
	r.signedUp.Add(1)
	return s
}

// runTask runs one task of the mix, due at due.
func (r *runner) runTask(ctx context.Context, s *student, due time.Time) {
	n := rand.IntN(lastOr0(r.cum))
	task := 0
	for n >= r.cum[task] {
		task++
	}
	switch mixTasks[task] {
	case TaskContent:
		r.readContent(ctx, s, due)
	case TaskUser:
		_ = r.try(ctx, TaskUser, due, func(ctx context.Context) error {
			u, err := s.api.User(ctx)
			if err == nil && u.ID != s.id {
				return fmt.Errorf("GET /user answered student %s for %s", u.ID, s.id)
			}
			return err
		})
	case TaskProgress:
		_ = r.try(ctx, TaskProgress, due, func(ctx context.Context) error {
			_, err := s.api.Progress(ctx)
			return err
		})
	case TaskAttempts:
		_ = r.try(ctx, TaskAttempts, due, func(ctx context.Context) error {
			page, err := s.api.Attempts(ctx, client.AttemptsQuery{})
			for _, a := range page.Attempts {
				if a.StudentID != s.id {
					return fmt.Errorf("GET /attempts listed attempt %s of student %s for %s", a.AttemptID, a.StudentID, s.id)
				}
			}
			return err
		})
	case TaskSubmit:
		r.submit(ctx, s, due)
	}
}

// errNotModified marks a 304 for try.
var errNotModified = errors.New("not modified")

// readContent reads the course list, a course or a quiz, with
// If-None-Match for a share of them when the student has an ETag.
func (r *runner) readContent(ctx context.Context, s *student, due time.Time) {
	var path, id string
	kind := rand.IntN(3)
	switch kind {
	case 0:
		path = "courses"
	case 1:
		id = r.content.courses[rand.IntN(len(r.content.courses))]
		path = "course/" + id
	default:
		id = r.content.quizIDs[rand.IntN(len(r.content.quizIDs))]
		path = "quiz/" + id
	}
	var opts []client.ContentOption
	s.mu.Lock()
	if etag := s.etags[path]; etag != "" && rand.Float64() < r.cfg.ConditionalShare {
		opts = append(opts, client.IfNoneMatch(etag))
	}
	s.mu.Unlock()
	_ = r.try(ctx, TaskContent, due, func(ctx context.Context) error {
		var info client.CacheInfo
		var err error
		switch kind {
		case 0:
			_, info, err = s.api.Courses(ctx, opts...)
		case 1:
			_, info, err = s.api.Course(ctx, id, opts...)
		default:
			_, info, err = s.api.Quiz(ctx, id, opts...)
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.etags[path] = info.ETag
		s.mu.Unlock()
		if info.NotModified {
			return errNotModified
		}
		return nil
	})
}

// submit posts one attempt with a new Idempotency-Key, and re-sends it
// with the same key for a share of the 202s.
func (r *runner) submit(ctx context.Context, s *student, due time.Time) {
	q := r.content.quizzes[rand.IntN(len(r.content.quizzes))]
	answers := make([]client.Answer, 0, len(q.questions))
	for _, qu := range q.questions {
		answers = append(answers, client.Answer{QuestionID: qu.id, ChoiceID: qu.choices[rand.IntN(len(qu.choices))]})
	}
	s.mu.Lock()
	key := fmt.Sprintf("%s-%d-%d", r.runID, s.idx, s.next)
	s.next++
	sub := &submission{quiz: q.id, answers: answers}
	s.sent[key] = sub
	s.mu.Unlock()

	var got client.Submission
	err := r.try(ctx, TaskSubmit, due, func(ctx context.Context) error {
		var err error
		got, err = s.api.SubmitAttempt(ctx, q.id, answers, client.WithIdempotencyKey(key))
		return err
	})
	if err != nil {
		return // counted; the outcome is unknown unless it was a 4xx
	}
	at := time.Now()
	r.acceptedAll.Add(1)
	s.mu.Lock()
	sub.accepted, sub.attempt = true, got.Attempt
	s.mu.Unlock()
	measured := r.stats.measured(TaskSubmit, due)
	if measured {
		r.accepted.Add(1)
		r.sampleLag(ctx, s, got.Attempt, at)
	}
	if rand.Float64() >= r.cfg.ResendShare {
		return
	}
	// A client that lost the answer sends the same submission again.
	resentAt := time.Now()
	_ = r.try(ctx, TaskSubmit, resentAt, func(ctx context.Context) error {
		again, err := s.api.SubmitAttempt(ctx, q.id, answers, client.WithIdempotencyKey(key))
		if err != nil {
			return err
		}
		if r.stats.measured(TaskSubmit, resentAt) {
			r.accepted.Add(1)
			r.resends.Add(1)
		}
		if a, b := again.Attempt, got.Attempt; a.AttemptID != b.AttemptID || a.Score != b.Score ||
			!a.SubmittedAt.Equal(b.SubmittedAt) || a.QuizID != b.QuizID {
			return fmt.Errorf("a re-sent attempt POST answered %+v, the first %+v", a, b)
		}
		return nil
	})
}

// try runs op until it succeeds, fails for good or MaxTries ran out,
// timing each try: the first from due, the others from when they were
// sent. 503, 429 and transport errors are tried again after the server's
// Retry-After (or a short backoff); a 304 (errNotModified) is a success.
func (r *runner) try(ctx context.Context, task string, due time.Time, op func(context.Context) error) error {
	start := due
	var err error
	for n := 1; ; n++ {
		err = op(ctx)
		d := time.Since(start)
		status := client.StatusOf(err)
		switch {
		case err == nil:
			r.stats.record(task, start, d, answered, nil)
			return nil
		case errors.Is(err, errNotModified):
			r.stats.record(task, start, d, notModified, nil)
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case status == http.StatusServiceUnavailable:
			r.stats.record(task, start, d, unavailable, err)
		case status == http.StatusTooManyRequests:
			r.stats.record(task, start, d, rateLimited, err)
		case status == 0 && task != TaskSignup && isTransport(err):
			r.stats.record(task, start, d, failed, err) // the answer was lost: try again
		default:
			r.stats.record(task, start, d, failed, err)
			return err
		}
		if n >= r.cfg.MaxTries {
			return err
		}
		wait := min(50*time.Millisecond<<min(n-1, 5), time.Second)
		var e *client.Error
		if errors.As(err, &e) && e.RetryAfterDelay > 0 {
			wait = min(e.RetryAfterDelay, 2*time.Second)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		start = time.Now()
	}
}

// isTransport reports whether err is a failed exchange (refused, reset,
// timed out) rather than an answer.
func isTransport(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// sampleLag follows an accepted attempt until it reads as recorded, for
// at most LagRate attempts a second.
func (r *runner) sampleLag(ctx context.Context, s *student, a client.Attempt, at time.Time) {
	if r.cfg.LagRate < 0 {
		return
	}
	every := int64(float64(time.Second) / r.cfg.LagRate)
	last := r.lag.last.Load()
	if at.UnixNano()-last < every || !r.lag.last.CompareAndSwap(last, at.UnixNano()) {
		return
	}
	if a.Status == client.StatusRecorded { // stored before the 202 was sent
		r.lag.add(0)
		return
	}
	r.lagWG.Add(1)
	go func() {
		defer r.lagWG.Done()
		deadline := at.Add(time.Minute)
		// The first read at once: an attempt stored before its 202 was sent
		// reads as recorded the first time.
		for wait := time.Duration(0); sleep(ctx, wait) && time.Now().Before(deadline); wait = r.cfg.LagPoll {
			r.lag.polls.Add(1)
			got, err := s.api.Attempt(ctx, a.AttemptID)
			if err != nil {
				r.lag.pollErrors.Add(1)
			}
			if err == nil && got.Status == client.StatusRecorded {
				r.lag.add(time.Since(at))
				return
			}
		}
		r.lag.mu.Lock()
		r.lag.timedOut++
		r.lag.mu.Unlock()
	}()
}

// finish gathers the Result.
func (r *runner) finish() Result {
	res := r.result
	c := r.cfg
	res.Mode, res.Users, res.Rate, res.Weights = c.Mode(), c.Users, c.Rate, c.Weights
	res.ThinkTime, res.WarmUp, res.Window = c.ThinkTime.Seconds(), c.WarmUp.Seconds(), r.window.Seconds()
	total := TaskResult{Name: "total"}
	all := newHist()
	for i, name := range mixTasks {
		if c.Weights.list()[i] == 0 {
			continue
		}
		t, h := r.stats.result(name, r.window)
		res.Tasks = append(res.Tasks, t)
		all.Merge(h)
		total.Requests += t.Requests
		total.NotModified += t.NotModified
		total.Unavailable += t.Unavailable
		total.RateLimited += t.RateLimited
		total.Errors += t.Errors
	}
	total.Latency = latencyOf(all)
	if r.window > 0 {
		total.RPS = float64(total.Requests) / r.window.Seconds()
	}
	res.Total = total
	res.Signup, _ = r.stats.result(TaskSignup, 0)
	res.Accepted, res.Resends, res.Late = r.accepted.Load(), r.resends.Load(), r.late.Load()
	r.lag.mu.Lock()
	res.Lag, res.LagTimedOut = latencyOf(r.lag.hist), r.lag.timedOut
	r.lag.mu.Unlock()
	res.LagPolls, res.LagPollErrors = r.lag.polls.Load(), r.lag.pollErrors.Load()
	res.ErrorSamples = r.stats.errorSamples()
	return res
}
