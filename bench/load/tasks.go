package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/retry"
)

// studentPassword is every virtual student's password.
const studentPassword = "load test password"

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
		st, token, err = api.Signup(ctx, email, fmt.Sprintf("Load %d", i), studentPassword)
		if client.IsCode(err, client.CodeConflict) {
			// A try whose answer was lost created the account: log in.
			token, err = api.Login(ctx, email, studentPassword)
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
		idx: i, id: st.ID, email: email, base: api, api: api.WithToken(token), own: r.patient.WithToken(token),
		etags: map[string]string{}, sent: map[string]*submission{},
	}
	r.studentsMu.Lock()
	r.students = append(r.students, s)
	r.studentsMu.Unlock()
	r.signedUp.Add(1)
	return s
}

// bareStudents returns Config.Users students that never signed up, each
// on its own connections, for the floor.
func (r *runner) bareStudents() []*student {
	r.studentsMu.Lock()
	defer r.studentsMu.Unlock()
	for i := range r.cfg.Users {
		api := r.api
		if r.addrs != nil {
			api = client.New(r.cfg.URL, client.Options{HTTPClient: r.addrs.client(i), Policy: retry.Policy{Elapsed: time.Nanosecond}, Deadline: r.cfg.RequestTimeout})
		}
		r.students = append(r.students, &student{idx: i, base: api, api: api, own: r.patient})
	}
	r.signedUp.Store(int64(r.cfg.Users))
	return append([]*student(nil), r.students...)
}

// runTask runs one task of the mix, due at due.
func (r *runner) runTask(ctx context.Context, s *student, due time.Time) {
	if r.cfg.Floor != "" {
		_ = r.try(ctx, TaskFloor, due, func(ctx context.Context) error {
			_, err := get(ctx, s.api, r.cfg.Floor, nil)
			return err
		})
		return
	}
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
			_, err := get(ctx, s.api, "/api/v1/student-progress", nil)
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
	case TaskCheck:
		r.submitCheck(ctx, s, due)
	}
}

// errNotModified marks a 304 for try.
var errNotModified = errors.New("not modified")

// readContent reads the course list, a course or a quiz, with
// If-None-Match for a share of them when the student has an ETag.
func (r *runner) readContent(ctx context.Context, s *student, due time.Time) {
	var path string
	switch rand.IntN(3) {
	case 0:
		path = "/api/v1/courses"
	case 1:
		path = "/api/v1/courses/" + r.content.courses[rand.IntN(len(r.content.courses))]
	default:
		path = "/api/v1/quizzes/" + r.content.quizIDs[rand.IntN(len(r.content.quizIDs))]
	}
	var h http.Header
	s.mu.Lock()
	if etag := s.etags[path]; etag != "" && rand.Float64() < r.cfg.ConditionalShare {
		h = http.Header{"If-None-Match": {etag}}
	}
	s.mu.Unlock()
	_ = r.try(ctx, TaskContent, due, func(ctx context.Context) error {
		rh, err := get(ctx, s.api, path, h)
		if err == nil {
			s.mu.Lock()
			s.etags[path] = rh.Get("ETag")
			s.mu.Unlock()
		}
		return err // errNotModified for a 304
	})
}

// get sends a GET whose body the run does not look at (content, progress:
// the check after the run reads progress itself), reading the whole body
// without decoding it, so that the load tool spends its CPU on requests
// rather than on JSON. It returns the response's header, or the API's
// *client.Error for a status of 400 or more; a 304 is not an error.
func get(ctx context.Context, c *client.Client, path string, h http.Header) (http.Header, error) {
	status, rh, body, err := c.Do(ctx, http.MethodGet, path, h, nil)
	if err != nil {
		return nil, err
	}
	if err := client.ErrorOf(status, rh, body); err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusNotModified {
		return nil, fmt.Errorf("GET %s: unexpected status %d", path, status)
	}
	if status == http.StatusNotModified {
		return rh, errNotModified
	}
	return rh, nil
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
