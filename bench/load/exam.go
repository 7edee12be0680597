package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quizstream/quizstream/client"
)

// The tasks of the exam workload.
const (
	TaskLogin      = "login"       // POST /login, once per student
	TaskStart      = "start"       // POST /quizzes/{id}/sessions
	TaskSave       = "save"        // PUT /sessions/{id}/answers/{q}: an autosave
	TaskExamSubmit = "exam_submit" // POST /sessions/{id}/submit
)

var examTasks = []string{TaskLogin, TaskStart, TaskSave, TaskExamSubmit}

// ExamConfig is the exam workload (Config.Exam): every student signs up
// (not part of the exam), then logs in, the logins spread over
// LoginSpread; once all are in, each starts the timed quiz within
// StartWithin, autosaves an answer every SaveEveryMin..SaveEveryMax with a
// rising seq (some saves re-sent, some sent after a later one), and
// either submits within the last SubmitWindow before its deadline or
// leaves the session to be finalized at deadline + grace, which the tool
// then times until the attempt reads as recorded. The exam lasts the
// quiz's own time limit. Zero values take the defaults.
type ExamConfig struct {
	// QuizID is the timed quiz. Defaults to the served timed quiz with the
	// shortest time limit.
	QuizID string
	// LoginSpread spreads the logins evenly. Defaults to 60s.
	LoginSpread time.Duration
	// StartWithin spreads the starts (uniformly at random) after the last
	// login. Defaults to 5s.
	StartWithin time.Duration
	// SaveEveryMin and SaveEveryMax bound the pause between a student's
	// autosaves (uniform). Default to 5s and 10s.
	SaveEveryMin, SaveEveryMax time.Duration
	// SubmitWindow: a submitting student submits at a uniform time within
	// this long before its deadline. Defaults to 60s (at most the time
	// limit).
	SubmitWindow time.Duration
	// SubmitShare is the share of students who submit; the others are
	// finalized by the deadline. Defaults to 0.8; negative: none submits.
	SubmitShare float64
	// ResaveShare is the share of saves sent again with the same seq
	// after their 202 (a lost answer). Defaults to 0.05; negative: none.
	ResaveShare float64
	// OutOfOrderShare is the share of saves held back and sent after the
	// student's next save (a higher seq). Defaults to 0.05; negative: none.
	OutOfOrderShare float64
	// ClearShare is the share of saves that clear an answer. Defaults to
	// 0.1; negative: none.
	ClearShare float64
	// FinalizePoll is how often a session left to its deadline is read,
	// from deadline + grace, until its attempt reads as recorded: the
	// lateness's resolution. Defaults to 250ms.
	FinalizePoll time.Duration
	// FinalizeTimeout bounds that wait. Defaults to 2 minutes.
	FinalizeTimeout time.Duration
	// Key is the quiz's answer key (question id -> correct choice id), to
	// check each attempt's score against the grading of its saves; nil
	// checks the saves only. The API never sends a key: make bench takes
	// the demo content's (the ids are the same on every database), and
	// quizload reads one from -exam-key.
	Key map[string]string
}

func (x *ExamConfig) defaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&x.LoginSpread, time.Minute)
	def(&x.StartWithin, 5*time.Second)
	def(&x.SaveEveryMin, 5*time.Second)
	def(&x.SaveEveryMax, 10*time.Second)
	def(&x.SubmitWindow, time.Minute)
	def(&x.FinalizePoll, 250*time.Millisecond)
	def(&x.FinalizeTimeout, 2*time.Minute)
	share := func(s *float64, v float64) {
		if *s == 0 {
			*s = v
		}
	}
	share(&x.SubmitShare, 0.8)
	share(&x.ResaveShare, 0.05)
	share(&x.OutOfOrderShare, 0.05)
	share(&x.ClearShare, 0.1)
	if x.SaveEveryMax < x.SaveEveryMin {
		return errors.New("load: ExamConfig.SaveEveryMax is below SaveEveryMin")
	}
	if x.SubmitShare > 1 || x.ResaveShare > 1 || x.OutOfOrderShare > 1 || x.ClearShare > 1 {
		return errors.New("load: ExamConfig's shares are at most 1")
	}
	return nil
}

// ExamResult is what the exam workload found besides its tasks' latencies.
type ExamResult struct {
	QuizID     string `json:"quiz_id"`
	TimeLimitS int    `json:"time_limit_s"`
	GraceS     int    `json:"grace_s"`
	// LoginWindowS is from the first login sent to the last answered;
	// LoginRate is the answered logins per second of it.
	LoginWindowS float64 `json:"login_window_s"`
	LoginRate    float64 `json:"login_rate"`
	// Sessions counts the sessions started; Submitters the students meant
	// to submit, Submitted the 202s of their submits; Expired the sessions
	// left to their deadline.
	Sessions   int   `json:"sessions"`
	Submitters int   `json:"submitters"`
	Submitted  int64 `json:"submitted"`
	Expired    int   `json:"expired"`
	// Saves counts the saves answered 202, re-sends included; Resaves the
	// re-sends, OutOfOrder the saves sent after a later one.
	Saves      int64 `json:"saves"`
	Resaves    int64 `json:"resaves"`
	OutOfOrder int64 `json:"out_of_order"`
	// Lateness is from deadline + grace to the first read of the attempt
	// as recorded, for the sessions left to their deadline (an upper
	// bound, within FinalizePoll); LatenessTimedOut those not recorded
	// within FinalizeTimeout.
	Lateness         Latency `json:"finalization_lateness"`
	LatenessTimedOut int64   `json:"finalization_timed_out"`
	FinalizePolls    int64   `json:"finalize_polls"`
	// Verify is the check after the exam; nil when skipped.
	Verify *ExamVerification `json:"verify,omitempty"`
}

// sitting is one student's exam: what it sent and what it was told.
type sitting struct {
	s         *student
	started   bool
	session   client.Session
	submitter bool
	submit    bool // a 202 to its submit was heard
	attempt   client.Attempt

	saves map[string][]sentSave // by question id
}

type saveOutcome int

const (
	saveAccepted saveOutcome = iota // 202
	saveUnknown                     // no answer heard: may be stored or not
	saveRefused                     // 4xx: not stored
)

// sentSave is one autosave as sent.
type sentSave struct {
	seq     int64
	choice  string // "" clears
	outcome saveOutcome
}

// examRun is the exam workload's state beside the runner's.
type examRun struct {
	quiz     quiz
	sittings []*sitting

	submitted, saves, resaves, outOfOrder atomic.Int64

	lateness *lagStats
}

// pickExamQuiz returns the quiz the exam sits.
func (r *runner) pickExamQuiz() (quiz, error) {
	var best *quiz
	for i, q := range r.content.timed {
		if q.id == r.cfg.Exam.QuizID || (r.cfg.Exam.QuizID == "" && (best == nil || q.timeLimit < best.timeLimit)) {
			best = &r.content.timed[i]
		}
	}
	if best == nil {
		return quiz{}, fmt.Errorf("load: the API serves no timed quiz %q", r.cfg.Exam.QuizID)
	}
	return *best, nil
}

// exam signs every student up, then runs the exam workload.
func (r *runner) exam(ctx context.Context) error {
	q, err := r.pickExamQuiz()
	if err != nil {
		return err
	}
	cfg := r.cfg.Exam
	for _, qu := range q.questions {
		if _, ok := cfg.Key[qu.id]; !ok {
			cfg.Key = nil // a key of another quiz: scores are not graded
			break
		}
	}
	students, err := r.signupAll(ctx)
	if err != nil {
		return err
	}
	e := &examRun{quiz: q, lateness: &lagStats{hist: newHist()}}
	r.examRun = e
	begin := time.Now()
	r.stats.setWindow(begin, begin.Add(100*365*24*time.Hour))
	r.setPhase("login")
	var wg sync.WaitGroup
	var lastLogin atomic.Int64
	for i, s := range students {
		x := &sitting{s: s, saves: map[string][]sentSave{}}
		e.sittings = append(e.sittings, x)
		wg.Go(func() {
			if !sleep(ctx, time.Duration(i)*cfg.LoginSpread/time.Duration(len(students))) {
				return
			}
			if r.login(ctx, s) == nil {
				lastLogin.Store(time.Now().UnixNano())
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	r.result.Exam = &ExamResult{QuizID: q.id, TimeLimitS: q.timeLimit}
	if last := lastLogin.Load(); last > 0 {
		w := time.Unix(0, last).Sub(begin)
		r.result.Exam.LoginWindowS = w.Seconds()
		if t, _ := r.stats.result(TaskLogin, 0); w > 0 {
			r.result.Exam.LoginRate = float64(t.Requests) / w.Seconds()
		}
	}

	r.setPhase("exam")
	examStart := time.Now()
	for _, st := range e.sittings {
		wg.Go(func() { r.sit(ctx, e, st, examStart.Add(rand.N(cfg.StartWithin))) })
	}
	wg.Wait()
	r.window = time.Since(begin)
	return ctx.Err()
}

// login logs s in again, replacing its token, and returns the error.
func (r *runner) login(ctx context.Context, s *student) error {
	var token string
	err := r.try(ctx, TaskLogin, time.Now(), func(ctx context.Context) error {
		var err error
		token, err = s.base.Login(ctx, s.email, studentPassword)
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.api, s.own = s.base.WithToken(token), r.patient.WithToken(token)
		s.mu.Unlock()
	}
	return err
}

// sit is one student's exam from its start at startAt.
func (r *runner) sit(ctx context.Context, e *examRun, x *sitting, startAt time.Time) {
	cfg := r.cfg.Exam
	if !sleep(ctx, time.Until(startAt)) {
		return
	}
	s := x.s
	key := fmt.Sprintf("%s-exam-%d", r.runID, s.idx)
	err := r.try(ctx, TaskStart, startAt, func(ctx context.Context) error {
		var err error
		x.session, err = s.api.StartSession(ctx, e.quiz.id, client.WithIdempotencyKey(key))
		return err
	})
	if err != nil {
		return
	}
	x.started = true
	deadline := x.session.Deadline
	x.submitter = rand.Float64() < cfg.SubmitShare
	saveUntil := deadline.Add(-time.Second) // a save at the deadline's edge is the edge tests' business
	var submitAt time.Time
	if x.submitter {
		submitAt = deadline.Add(-rand.N(min(cfg.SubmitWindow, deadline.Sub(x.session.StartedAt)) + 1))
		saveUntil = submitAt
	}
	var seq int64
	var held *sentSave // held back, sent after the next save
	var heldQ string
	pause := func() time.Duration {
		return cfg.SaveEveryMin + rand.N(cfg.SaveEveryMax-cfg.SaveEveryMin+1)
	}
	for next := time.Now().Add(pause()); next.Before(saveUntil); next = next.Add(pause()) {
		if !sleep(ctx, time.Until(next)) {
			return
		}
		qu := e.quiz.questions[rand.IntN(len(e.quiz.questions))]
		seq++
		sv := sentSave{seq: seq}
		if rand.Float64() >= cfg.ClearShare {
			sv.choice = qu.choices[rand.IntN(len(qu.choices))]
		}
		if held == nil && rand.Float64() < cfg.OutOfOrderShare {
			held, heldQ = &sv, qu.id
			continue
		}
		r.save(ctx, e, x, qu.id, sv, false)
		if held != nil {
			e.outOfOrder.Add(1)
			r.save(ctx, e, x, heldQ, *held, false)
			held = nil
		}
		if rand.Float64() < cfg.ResaveShare {
			r.save(ctx, e, x, qu.id, sv, true)
		}
	}
	if held != nil {
		r.save(ctx, e, x, heldQ, *held, false)
	}
	if x.submitter {
		if !sleep(ctx, time.Until(submitAt)) {
			return
		}
		err := r.try(ctx, TaskExamSubmit, submitAt, func(ctx context.Context) error {
			var err error
			x.attempt, err = s.api.SubmitSession(ctx, x.session.SessionID)
			return err
		})
		if err == nil {
			x.submit = true
			e.submitted.Add(1)
		}
		return
	}
	r.awaitFinal(ctx, e, x)
}

// save sends one autosave and notes its outcome.
func (r *runner) save(ctx context.Context, e *examRun, x *sitting, questionID string, sv sentSave, resend bool) {
	var choice *string
	if sv.choice != "" {
		choice = &sv.choice
	}
	err := r.try(ctx, TaskSave, time.Now(), func(ctx context.Context) error {
		_, err := x.s.api.SaveAnswer(ctx, x.session.SessionID, questionID, choice, sv.seq)
		return err
	})
	switch s := client.StatusOf(err); {
	case err == nil:
		sv.outcome = saveAccepted
		e.saves.Add(1)
		if resend {
			e.resaves.Add(1)
		}
	case s >= 400 && s < 500 && s != 429:
		sv.outcome = saveRefused
	default:
		sv.outcome = saveUnknown
	}
	x.s.mu.Lock()
	x.saves[questionID] = append(x.saves[questionID], sv)
	x.s.mu.Unlock()
}

// awaitFinal reads a session left to its deadline, from deadline +
// grace, until it is finalized and its attempt reads as recorded (two
// reads a poll at most: the session until it names its attempt, then the
// attempt).
func (r *runner) awaitFinal(ctx context.Context, e *examRun, x *sitting) {
	cutoff := x.session.Deadline.Add(time.Duration(x.session.GraceS) * time.Second)
	if !sleep(ctx, time.Until(cutoff)) {
		return
	}
	cfg := r.cfg.Exam
	attempt := ""
	for ctx.Err() == nil && time.Since(cutoff) < cfg.FinalizeTimeout {
		e.lateness.polls.Add(1)
		if attempt == "" {
			sess, err := x.s.api.Session(ctx, x.session.SessionID)
			if err != nil {
				e.lateness.pollErrors.Add(1)
			}
			if err == nil && sess.State != client.SessionOpen {
				attempt = sess.AttemptID
			}
		}
		if attempt != "" {
			got, err := x.s.api.Attempt(ctx, attempt)
			if err == nil && got.Status == client.StatusRecorded {
				e.lateness.add(time.Since(cutoff))
				return
			}
			if err != nil && !client.IsCode(err, client.CodeNotFound) {
				e.lateness.pollErrors.Add(1)
			}
		}
		sleep(ctx, cfg.FinalizePoll)
	}
	e.lateness.mu.Lock()
	e.lateness.timedOut++
	e.lateness.mu.Unlock()
}

// finishExam fills the exam's figures into res.
func (r *runner) finishExam(res *Result) {
	e := r.examRun
	if e == nil || res.Exam == nil {
		return
	}
	x := res.Exam
	for _, st := range e.sittings {
		if !st.started {
			continue
		}
		x.Sessions++
		x.GraceS = st.session.GraceS
		if st.submitter {
			x.Submitters++
		} else {
			x.Expired++
		}
	}
	x.Submitted, x.Saves, x.Resaves, x.OutOfOrder = e.submitted.Load(), e.saves.Load(), e.resaves.Load(), e.outOfOrder.Load()
	e.lateness.mu.Lock()
	x.Lateness, x.LatenessTimedOut = latencyOf(e.lateness.hist), e.lateness.timedOut
	e.lateness.mu.Unlock()
	x.FinalizePolls = e.lateness.polls.Load()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
