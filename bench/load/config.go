package load

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The tasks of the mix, and signup, which every virtual student does once
// before its first task.
const (
	TaskContent  = "content"  // a course list, a course or a quiz, sometimes with If-None-Match
	TaskUser     = "user"     // GET /user
	TaskProgress = "progress" // GET /student-progress
	TaskAttempts = "attempts" // the first page of the student's attempts
	TaskSubmit   = "submit"   // an attempt POST with an Idempotency-Key, sometimes re-sent
	TaskCheck    = "check"    // a code check POST of one of Config.Checks, with an Idempotency-Key
	TaskSignup   = "signup"   // not in the mix
	TaskFloor    = "floor"    // Config.Floor's GET: no mix, no signup
)

// mixTasks lists the tasks of the mix in the order results show them.
var mixTasks = []string{TaskContent, TaskUser, TaskProgress, TaskAttempts, TaskSubmit, TaskCheck}

// Weights are the relative shares of the tasks in the mix; a zero weight
// leaves a task out.
type Weights struct {
	Content  int `json:"content"`
	User     int `json:"user"`
	Progress int `json:"progress"`
	Attempts int `json:"attempts"`
	Submit   int `json:"submit"`
	// Check needs Config.Checks.
	Check int `json:"check,omitempty"`
}

// DefaultWeights is exam day's mix: 40% content reads, 10% own user, 15%
// progress, 10% own attempts, 25% attempt POSTs.
var DefaultWeights = Weights{Content: 40, User: 10, Progress: 15, Attempts: 10, Submit: 25}

// SubmitOnly is a mix of attempt POSTs alone.
var SubmitOnly = Weights{Submit: 1}

func (w Weights) list() []int {
	return []int{w.Content, w.User, w.Progress, w.Attempts, w.Submit, w.Check}
}

func (w Weights) total() int {
	n := 0
	for _, v := range w.list() {
		n += v
	}
	return n
}

// String is the form ParseWeights reads, tasks of weight 0 left out.
func (w Weights) String() string {
	var parts []string
	for i, v := range w.list() {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", mixTasks[i], v))
		}
	}
	return strings.Join(parts, ",")
}

// ParseWeights reads "content=40,user=10,progress=15,attempts=10,submit=25"
// (tasks not named get weight 0; "default" is DefaultWeights). It returns
// an error naming a bad task or weight.
func ParseWeights(s string) (Weights, error) {
	if strings.TrimSpace(s) == "" || s == "default" {
		return DefaultWeights, nil
	}
	var w Weights
	for _, part := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return Weights{}, fmt.Errorf("weights: %q is not task=weight with a weight >= 0", part)
		}
		switch strings.TrimSpace(name) {
		case TaskContent:
			w.Content = n
		case TaskUser:
			w.User = n
		case TaskProgress:
			w.Progress = n
		case TaskAttempts:
			w.Attempts = n
		case TaskSubmit:
			w.Submit = n
		case TaskCheck:
			w.Check = n
		default:
			return Weights{}, fmt.Errorf("weights: unknown task %q (one of %s)", name, strings.Join(mixTasks, ", "))
		}
	}
	if w.total() == 0 {
		return Weights{}, errors.New("weights: every weight is 0")
	}
	return w, nil
}

// Config describes one run. Durations are wall-clock; the zero value of
// every field but URL is usable.
type Config struct {
	// URL is the API's base URL (without /api/v1). Required.
	URL string
	// Users is how many virtual students sign up. In the closed model each
	// loops over the mix; in the open model arrivals pick one at random.
	// At most 15,375,000 when each connects from an address of its own
	// (see HTTPClient). Defaults to 50.
	Users int
	// Weights is the mix. Defaults to DefaultWeights.
	Weights Weights
	// ThinkTime is a closed-model student's pause after each task, drawn
	// uniformly between half and one and a half times it. Defaults to 0.
	ThinkTime time.Duration
	// Ramp spreads the closed-model students' first tasks evenly over it,
	// once every student has signed up; it is not measured. Defaults to 0:
	// all at once.
	Ramp time.Duration
	// WarmUp runs the load without measuring it, after every student has
	// signed up and the ramp is over. Defaults to 0.
	WarmUp time.Duration
	// Duration is the measured part of the run. Defaults to 10s.
	Duration time.Duration
	// Rate, when above 0, selects the open model: tasks start at this
	// constant rate (per second), whatever the answers' latency, and each
	// request's latency is measured from the time it was due to be sent,
	// so a server that falls behind is charged for the queue it causes (no
	// coordinated omission). Defaults to 0: the closed model.
	Rate float64
	// MaxInFlight bounds the open model's tasks in flight; an arrival past
	// it waits for one to end, and the wait counts in its latency.
	// Defaults to 2000.
	MaxInFlight int
	// ConditionalShare is the share of content reads that send
	// If-None-Match with an ETag the student saw before. Defaults to 0.5;
	// negative means never.
	ConditionalShare float64
	// ResendShare is the share of accepted attempt POSTs that the student
	// sends again with the same Idempotency-Key and answers, as a client
	// that lost the answer would. Defaults to 0.05; negative means never.
	ResendShare float64
	// MaxTries bounds the tries of one request that gets 503, 429 or a
	// transport error; every try is measured on its own, and an attempt
	// POST is re-sent with the same key. Defaults to 10.
	MaxTries int
	// RequestTimeout bounds one try. Defaults to 30s.
	RequestTimeout time.Duration
	// LagRate is how many accepted attempts per second (at most) are
	// followed until they read as recorded, to measure the lag from 202
	// to recorded. Defaults to 10; negative disables.
	LagRate float64
	// LagPoll is how often a followed attempt is read; it is the lag's
	// resolution. Defaults to 20ms.
	LagPoll time.Duration
	// SignupConcurrency bounds concurrent signups (password hashing is
	// the API's most expensive request). Defaults to 8.
	SignupConcurrency int
	// SkipVerify skips the check after the run.
	SkipVerify bool
	// VerifyTimeout bounds the wait for every accepted attempt to read as
	// recorded. Defaults to 2 minutes.
	VerifyTimeout time.Duration
	// VerifyConcurrency bounds the requests in flight of the check.
	// Defaults to 16.
	VerifyConcurrency int
	// HTTPClient sends every request. Defaults to clients of the run's
	// own, closed at the end: when the API is on a loopback IPv4 address,
	// one per student, each connecting from an address of its own
	// (127.10.0.1, 127.10.0.2, ...), as students come from their own
	// machines, so that the API's limits per client address apply per
	// student; otherwise one shared client.
	HTTPClient *http.Client
	// SingleAddr makes every student connect from the same address even
	// when the API is on loopback.
	SingleAddr bool
	// Progress, when set, is called once a second with the run's state.
	Progress func(Progress)
	// Floor, when set, is a path every task GETs instead of the mix, from
	// students that never sign up, with no check afterwards: the load on a
	// trivial server, whose CPU per request is the floor others are
	// measured against. Closed model only.
	Floor string
	// Exam, when set, runs the exam workload (see ExamConfig) instead of
	// the mix: Weights, ThinkTime, Ramp, WarmUp, Duration and Rate do not
	// apply; the run lasts the logins and the quiz's time limit.
	Exam *ExamConfig
	// Checks are the programs the check task submits, one drawn at
	// random per check. Required when Weights.Check is above 0.
	Checks []CheckProgram
	// Windows, when set, splits the measured part of the run into
	// consecutive windows of these lengths (their sum replaces Duration);
	// Result.Windows has each one's figures. Not with Floor or Exam.
	Windows []Window
	// OnWindow, when set, is called as window i of Windows begins, from
	// the goroutine that starts the tasks, so that what changes with the
	// window (a fault injected, say) changes at its start. It must not
	// block.
	OnWindow func(i int)
	// OnPhase, when set, is called as the run enters each phase (see
	// Progress.Phase), from the goroutine that changes it: "measure" starts
	// the measured window and "finish" ends it, for sampling the servers'
	// CPU time around it. It must not block.
	OnPhase func(phase string)
}

func (c *Config) defaults() error {
	if c.URL == "" {
		return errors.New("load: Config.URL is required")
	}
	if c.Users <= 0 {
		c.Users = 50
	}
	if c.Users > maxSourceAddrs && c.HTTPClient == nil && !c.SingleAddr && isLoopback(c.URL) {
		return fmt.Errorf("load: Config.Users: at most %d students have a loopback address of their own; set SingleAddr for more", maxSourceAddrs)
	}
	if c.Floor != "" {
		if c.Rate > 0 || c.Exam != nil {
			return errors.New("load: Config.Floor runs the closed model alone")
		}
		c.SkipVerify, c.LagRate = true, -1
	}
	if c.Exam != nil {
		x := *c.Exam // the caller's stays as it was
		c.Exam = &x
		if err := c.Exam.defaults(); err != nil {
			return err
		}
		c.Rate = 0
	}
	if c.Weights == (Weights{}) {
		c.Weights = DefaultWeights
	}
	if c.Weights.Check > 0 && len(c.Checks) == 0 {
		return errors.New("load: Config.Weights: check needs Config.Checks")
	}
	if len(c.Windows) > 0 {
		if c.Floor != "" || c.Exam != nil {
			return errors.New("load: Config.Windows is for the mix, not Floor or Exam")
		}
		c.Duration = 0
		for i, w := range c.Windows {
			if w.Duration <= 0 {
				return fmt.Errorf("load: Config.Windows[%d] (%s): the duration must be above 0", i, w.Name)
			}
			c.Duration += w.Duration
		}
	}
	for i, v := range c.Weights.list() {
		if v < 0 {
			return fmt.Errorf("load: Config.Weights: %s is negative", mixTasks[i])
		}
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.ThinkTime < 0 || c.Ramp < 0 || c.WarmUp < 0 {
		return errors.New("load: Config.ThinkTime, Ramp and WarmUp must not be negative")
	}
	if c.Rate < 0 {
		return errors.New("load: Config.Rate must not be negative")
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 2000
	}
	if c.ConditionalShare == 0 {
		c.ConditionalShare = 0.5
	}
	if c.ResendShare == 0 {
		c.ResendShare = 0.05
	}
	if c.ConditionalShare > 1 || c.ResendShare > 1 {
		return errors.New("load: Config.ConditionalShare and ResendShare are at most 1")
	}
	if c.MaxTries <= 0 {
		c.MaxTries = 10
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.LagRate == 0 {
		c.LagRate = 10
	}
	if c.LagPoll <= 0 {
		c.LagPoll = 20 * time.Millisecond
	}
	if c.SignupConcurrency <= 0 {
		c.SignupConcurrency = 8
	}
	if c.VerifyTimeout <= 0 {
		c.VerifyTimeout = 2 * time.Minute
	}
	if c.VerifyConcurrency <= 0 {
		c.VerifyConcurrency = 16
	}
	return nil
}

// Mode returns "exam" for the exam workload, "open" for a constant
// arrival rate, else "closed".
func (c Config) Mode() string {
	if c.Exam != nil {
		return "exam"
	}
	if c.Rate > 0 {
		return "open"
	}
	return "closed"
}
