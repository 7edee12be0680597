package checker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Judge0's status ids (app/enumerations/status.rb of judge0/judge0).
const (
	StatusInQueue          = 1
	StatusProcessing       = 2
	StatusAccepted         = 3
	StatusWrongAnswer      = 4
	StatusTimeLimit        = 5
	StatusCompilationError = 6
	StatusSIGSEGV          = 7
	StatusSIGXFSZ          = 8
	StatusSIGFPE           = 9
	StatusSIGABRT          = 10
	StatusNZEC             = 11
	StatusRuntimeOther     = 12
	StatusInternalError    = 13
	StatusExecFormatError  = 14
)

// StatusDescription returns Judge0's description of a status id, or
// "Status N" for an id Judge0 does not define.
func StatusDescription(id int) string {
	if d, ok := statusNames[id]; ok {
		return d
	}
	return "Status " + strconv.Itoa(id)
}

var statusNames = map[int]string{
	StatusInQueue:          "In Queue",
	StatusProcessing:       "Processing",
	StatusAccepted:         "Accepted",
	StatusWrongAnswer:      "Wrong Answer",
	StatusTimeLimit:        "Time Limit Exceeded",
	StatusCompilationError: "Compilation Error",
	StatusSIGSEGV:          "Runtime Error (SIGSEGV)",
	StatusSIGXFSZ:          "Runtime Error (SIGXFSZ)",
	StatusSIGFPE:           "Runtime Error (SIGFPE)",
	StatusSIGABRT:          "Runtime Error (SIGABRT)",
	StatusNZEC:             "Runtime Error (NZEC)",
	StatusRuntimeOther:     "Runtime Error (Other)",
	StatusInternalError:    "Internal Error",
	StatusExecFormatError:  "Exec Format Error",
}

// pollFields are the attributes a poll asks for (Judge0's fields
// parameter); status is {id, description}, status_id its older flat form.
const pollFields = "token,status,status_id,stdout,stderr,compile_output,message,time"

// maxResponseBytes bounds the body read from one answer: 20 submissions'
// outputs, base64-encoded, are far below it.
const maxResponseBytes = 32 << 20

var (
	// errStopped marks a call abandoned because the check's own context
	// ended (or would before the rate budget allowed the call): no fault
	// of the checker's, so the breaker does not count it.
	errStopped = errors.New("stopped")
	errTimeout = errors.New("timed out")
	errNetwork = errors.New("connection failed")
	errEngine  = errors.New("engine error")
	errBadBody = errors.New("malformed answer")
)

// StatusError is an HTTP answer other than 2xx. It wraps ErrUnavailable
// (5xx, 429) or ErrRejected (other 4xx).
type StatusError struct {
	Op   string // "submit" or "poll"
	Code int
	// Body is the start of the answer's body (Judge0 says why in it).
	Body string
	// Wait is the Retry-After the checker sent, if any.
	Wait time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Code, e.Body)
}

// Unwrap gives ErrUnavailable or ErrRejected.
func (e *StatusError) Unwrap() error {
	if e.Code >= 500 || e.Code == http.StatusTooManyRequests {
		return ErrUnavailable
	}
	return ErrRejected
}

// RetryAfter is the checker's Retry-After, honoured by package retry.
func (e *StatusError) RetryAfter() time.Duration { return e.Wait }

// submission is one test case as Judge0 takes it.
type submission struct {
	SourceCode     string  `json:"source_code"`
	LanguageID     int     `json:"language_id"`
	Stdin          string  `json:"stdin"`
	ExpectedOutput *string `json:"expected_output,omitempty"`
	CPUTimeLimit   float64 `json:"cpu_time_limit"`
	MemoryLimit    int     `json:"memory_limit"`
}

// status is Judge0's status object.
type status struct {
	ID          int    `json:"id"`
	Description string `json:"description"`
}

// outcome is one submission as a poll returns it, its texts decoded.
type outcome struct {
	Token         string     `json:"token"`
	Status        *status    `json:"status"`
	StatusID      *int       `json:"status_id"`
	Stdout        *string    `json:"stdout"`
	Stderr        *string    `json:"stderr"`
	CompileOutput *string    `json:"compile_output"`
	Message       *string    `json:"message"`
	Time          flexNumber `json:"time"`
}

func (o *outcome) statusID() int {
	if o.Status != nil {
		return o.Status.ID
	}
	if o.StatusID != nil {
		return *o.StatusID
	}
	return 0
}

// decode turns the base64 texts into plain ones. Judge0 encodes with
// Ruby's encode64, which breaks lines every 60 characters; Go's decoder
// skips the newlines.
func (o *outcome) decode() error {
	for _, p := range []**string{&o.Stdout, &o.Stderr, &o.CompileOutput, &o.Message} {
		if *p == nil {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(**p)
		if err != nil {
			return fmt.Errorf("%w: base64: %w", errBadBody, err)
		}
		s := string(b)
		*p = &s
	}
	return nil
}

// flexNumber reads Judge0's "time", a decimal it writes as a string
// ("0.002"), or a plain number as a compatible service may.
type flexNumber float64

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("time %s: %w", b, err)
	}
	*f = flexNumber(v)
	return nil
}

// testState is one test case's progress through a check.
type testState struct {
	token string   // set once submitted, cleared to resubmit
	final *outcome // status 3-12
}

// run is one Check's state, kept across its retries so that a retry
// submits only the tests without a token and polls the others.
type run struct {
	c     *Client
	req   Request
	lang  int
	tests []testState
}

func newRun(c *Client, req Request, lang int) *run {
	return &run{c: c, req: req, lang: lang, tests: make([]testState, len(req.Tests))}
}

// attempt submits what has no token, then polls until every test has a
// final status. A transient failure returns at once; the tokens stay, so
// the next attempt polls them again. A test the checker lost or failed
// with status 13/14 loses its token and is submitted again next attempt.
func (r *run) attempt(ctx context.Context) error {
	var todo []int
	for i := range r.tests {
		if r.tests[i].final == nil && r.tests[i].token == "" {
			todo = append(todo, i)
		}
	}
	for _, chunk := range chunks(todo, r.c.cfg.MaxBatch) {
		if err := r.submit(ctx, chunk); err != nil {
			return err
		}
	}
	for {
		var polling []int
		for i := range r.tests {
			if r.tests[i].final == nil && r.tests[i].token != "" {
				polling = append(polling, i)
			}
		}
		if len(polling) == 0 {
			return nil
		}
		var engineErr error
		for _, chunk := range chunks(polling, r.c.cfg.MaxBatch) {
			err := r.poll(ctx, chunk)
			if errors.Is(err, errEngine) {
				engineErr = err
				continue
			}
			if err != nil {
				return err
			}
		}
		if engineErr != nil {
			return engineErr
		}
		if !r.pending() {
			return nil
		}
		t := time.NewTimer(r.c.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("poll: %w: %w", errStopped, ctx.Err())
		case <-t.C:
		}
	}
}

func (r *run) pending() bool {
	for i := range r.tests {
		if r.tests[i].final == nil {
			return true
		}
	}
	return false
}

func (r *run) submit(ctx context.Context, idx []int) error {
	cpu := r.req.CPUTimeLimit
	if cpu <= 0 {
		cpu = r.c.cfg.CPUTimeLimit
	}
	mem := r.req.MemoryLimitKB
	if mem <= 0 {
		mem = r.c.cfg.MemoryLimitKB
	}
	src := base64.StdEncoding.EncodeToString([]byte(r.req.Source))
	batch := struct {
		Submissions []submission `json:"submissions"`
	}{Submissions: make([]submission, len(idx))}
	for j, i := range idx {
		t := r.req.Tests[i]
		batch.Submissions[j] = submission{
			SourceCode:   src,
			LanguageID:   r.lang,
			Stdin:        base64.StdEncoding.EncodeToString([]byte(t.Stdin)),
			CPUTimeLimit: cpu.Seconds(),
			MemoryLimit:  mem,
		}
		// Judge0 compares an empty expected output with a program's
		// empty stdout as "" against nil: Wrong Answer. So an empty
		// expectation is sent as none, and checked here (run.result).
		if t.Expected != "" {
			e := base64.StdEncoding.EncodeToString([]byte(t.Expected))
			batch.Submissions[j].ExpectedOutput = &e
		}
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("submit: encode: %w", err)
	}
	var created []map[string]json.RawMessage
	err = r.c.call(ctx, "submit", http.MethodPost, "/submissions/batch", url.Values{"base64_encoded": {"true"}}, body, &created, func() error {
		if len(created) != len(idx) {
			return fmt.Errorf("%w: %d tokens for %d submissions", errBadBody, len(created), len(idx))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Judge0 answers 201 with an error object in place of a token for a
	// submission it refused (a language id it lacks): the tokens it did
	// give are kept, and the check fails, for the refusal is final.
	var refused []string
	for j, i := range idx {
		var tok string
		if raw, ok := created[j]["token"]; ok && json.Unmarshal(raw, &tok) == nil && tok != "" {
			r.tests[i].token = tok
			continue
		}
		b, _ := json.Marshal(created[j])
		refused = append(refused, string(b))
	}
	if len(refused) > 0 {
		return fmt.Errorf("submit: %w: %s", ErrRejected, strings.Join(refused, "; "))
	}
	return nil
}

func (r *run) poll(ctx context.Context, idx []int) error {
	tokens := make([]string, len(idx))
	for j, i := range idx {
		tokens[j] = r.tests[i].token
	}
	var got struct {
		Submissions []*outcome `json:"submissions"`
	}
	q := url.Values{"tokens": {strings.Join(tokens, ",")}, "base64_encoded": {"true"}, "fields": {pollFields}}
	// The breaker counts a poll that finds status 13/14 as a failure: a
	// checker whose sandbox is broken is as dead as one that is down.
	err := r.c.call(ctx, "poll", http.MethodGet, "/submissions/batch", q, nil, &got, func() error {
		if len(got.Submissions) != len(idx) {
			return fmt.Errorf("%w: %d submissions for %d tokens", errBadBody, len(got.Submissions), len(idx))
		}
		for _, o := range got.Submissions {
			if o == nil {
				continue
			}
			if err := o.decode(); err != nil {
				return err
			}
		}
		for _, o := range got.Submissions {
			if o != nil && (o.statusID() == StatusInternalError || o.statusID() == StatusExecFormatError) {
				msg := ""
				if o.Message != nil {
					msg = ": " + truncate(*o.Message, 200)
				}
				return fmt.Errorf("%w: %w: status %d %s%s", ErrUnavailable, errEngine, o.statusID(), StatusDescription(o.statusID()), msg)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEngine) {
		return err
	}
	var lost error
	for j, i := range idx {
		o := got.Submissions[j]
		switch {
		case o == nil:
			// Judge0 answers null for a token it does not know (a
			// restarted instance without its database): submit again.
			r.tests[i].token = ""
			lost = fmt.Errorf("poll: %w: %w: the checker lost a submission", ErrUnavailable, errEngine)
		case o.statusID() == StatusInQueue || o.statusID() == StatusProcessing:
		case o.statusID() >= StatusAccepted && o.statusID() <= StatusRuntimeOther:
			r.tests[i].final = o
		default: // 13, 14, or an id Judge0 does not define: run it again
			r.tests[i].token = ""
			if lost == nil && err == nil {
				lost = fmt.Errorf("poll: %w: %w: status %d", ErrUnavailable, errEngine, o.statusID())
			}
		}
	}
	if err == nil {
		err = lost
	}
	return err
}

// call sends one request through the breaker and the rate budget, and
// decodes a 2xx answer into out, then runs check on it (inside the
// breaker, so that check's errors count).
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, body []byte, out any, check func() error) error {
	if c.cb.State() == gobreaker.StateOpen {
		c.metrics.calls.WithLabelValues("breaker_open").Inc()
		return fmt.Errorf("%s: %w", op, ErrBreakerOpen)
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("%s: rate budget: %w: %w", op, errStopped, err)
	}
	_, err := c.cb.Execute(func() (struct{}, error) {
		if err := c.do(ctx, op, method, path, q, body, out); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, check()
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		c.metrics.calls.WithLabelValues("breaker_open").Inc()
		return fmt.Errorf("%s: %w", op, ErrBreakerOpen)
	}
	c.metrics.calls.WithLabelValues(outcomeOf(err)).Inc()
	return err
}

func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, body []byte, out any) error {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, c.base+path+"?"+q.Encode(), rd)
	if err != nil {
		return fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("X-Auth-Token", c.cfg.Token)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
		return c.transportErr(ctx, op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	c.metrics.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		return c.transportErr(ctx, op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Op: op, Code: resp.StatusCode, Body: truncate(strings.TrimSpace(string(data)), 512)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.Wait = time.Duration(s) * time.Second
		}
		return se
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("%s: %w: %w: answer over %d bytes", op, ErrUnavailable, errBadBody, maxResponseBytes)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w: %w: %w", op, ErrUnavailable, errBadBody, err)
	}
	return nil
}

func (c *Client) transportErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w: %w", op, errStopped, ctx.Err())
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%s: %w: %w after %s", op, ErrUnavailable, errTimeout, c.cfg.Timeout)
	}
	return fmt.Errorf("%s: %w: %w: %w", op, ErrUnavailable, errNetwork, err)
}

// outcomeOf names a call's outcome for quizstream_checker_calls_total.
func outcomeOf(err error) string {
	var se *StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errStopped):
		return "cancelled"
	case errors.As(err, &se) && errors.Is(err, ErrUnavailable):
		return "server_error"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, errTimeout):
		return "timeout"
	case errors.Is(err, errEngine):
		return "engine_error"
	case errors.Is(err, errBadBody):
		return "bad_answer"
	default:
		return "network"
	}
}

func chunks(idx []int, n int) [][]int {
	var out [][]int
	for len(idx) > n {
		out = append(out, idx[:n])
		idx = idx[n:]
	}
	if len(idx) > 0 {
		out = append(out, idx)
	}
	return out
}

// rejectionText is what a student reads of a refusal: Judge0's own words.
func rejectionText(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d %s", se.Code, se.Body)
	}
	s := err.Error()
	if i := strings.Index(s, ErrRejected.Error()); i >= 0 {
		s = strings.TrimPrefix(s[i+len(ErrRejected.Error()):], ": ")
	}
	return truncate(s, 1024)
}
