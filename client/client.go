// Package client is the Go client of quizstream's HTTP API v1: the package a
// learning site's backend imports to sign students up, read content, submit
// quiz attempts and read them back. Its types carry the HTTP contract's field names.
//
// # Retries
//
// A call is retried, with exponential backoff and jitter (the project's one
// policy, package retry), when it failed in a way that may go away by itself:
// a transport error (connection refused or reset, a connection closed before
// the answer), 503 unavailable or 429 rate_limited. A server's Retry-After
// is honoured: the client waits at least that long before the next try, and
// gives up at once when the wait would pass the call's deadline. Every try
// and every pause of one call fits in Options.Deadline (30s by default) and
// in ctx. No other 4xx is retried: it would fail the same way again. A
// call that runs out of time returns the API's last answer (errors.As
// finds the *Error) joined with ctx's error (errors.Is finds
// context.DeadlineExceeded).
//
// # Idempotency
//
// Only requests that cannot do anything twice are retried: GET and HEAD,
// logout, and the attempt POST, which always carries an Idempotency-Key.
// SubmitAttempt picks the key once per logical submission (a random UUID,
// unless the caller passes one with WithIdempotencyKey), sends the same key
// on every try, and returns it, so that a caller whose call failed (a 503
// past the deadline leaves the outcome unknown) can submit the same
// submission again later and get the original attempt rather than a second
// one. Signup and login are never retried: a retry after a lost answer
// could fail with a conflict or issue a second token.
//
// A Client is safe for concurrent use. WithToken derives a client that acts
// as one student and shares the connection pool.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	segjson "github.com/segmentio/encoding/json"

	"github.com/quizstream/quizstream/retry"
)

// maxResponse bounds a response body read into memory; the largest the API
// sends (a page of 100 attempts, the course list) is far below it.
const maxResponse = 32 << 20

var errResponseTooLarge = errors.New("client: response body over 32 MiB")

// Options configures a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests. Defaults to a client of its own whose
	// transport keeps up to 100 idle connections to the API.
	HTTPClient *http.Client
	// Token is sent as "Authorization: Bearer <token>" on every request.
	// Defaults to none (only signup, login and content work without one).
	Token string
	// Policy paces retries. The zero Policy is retry's default: a first
	// pause of 50ms, doubling with jitter up to 2s, for as long as Deadline
	// allows.
	Policy retry.Policy
	// Deadline bounds one call, all its tries and pauses included, in
	// addition to ctx. Defaults to 30s; negative means ctx alone.
	Deadline time.Duration
	// OnRetry, when set, hears every failed try that will be retried and the
	// pause before the next one: for logging or metrics. It must not block.
	OnRetry func(method, path string, err error, wait time.Duration)
}

// Client talks to one quizstream API (one base URL) as one student, or as
// nobody when it has no token.
type Client struct {
	base     string
	http     *http.Client
	token    string
	policy   retry.Policy
	deadline time.Duration
	onRetry  func(method, path string, err error, wait time.Duration)
	// position is the highest Quizstream-Position of this student's 202s,
	// sent back on reads of attempts (see PositionHeader).
	position *atomic.Uint64
}

// PositionHeader is the header in which the API gives each 202 its place
// in the event log, and in which the client sends back the highest it was
// given on its reads of attempts: the API then answers them, with every
// attempt the client had accepted, without a round trip to the log.
const PositionHeader = "Quizstream-Position"

// saw keeps the highest position of a response.
func (c *Client) saw(h http.Header) {
	seq, err := strconv.ParseUint(h.Get(PositionHeader), 10, 64)
	if err != nil {
		return
	}
	for {
		cur := c.position.Load()
		if seq <= cur || c.position.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// readHeader is the header of a read of attempts: the highest position
// seen, when there is one.
func (c *Client) readHeader() http.Header {
	seq := c.position.Load()
	if seq == 0 {
		return nil
	}
	return http.Header{PositionHeader: {strconv.FormatUint(seq, 10)}}
}

// New returns a client of the API at baseURL (such as
// "https://quiz.example.com", without /api/v1). It never fails: a bad
// baseURL makes every call return an error.
func New(baseURL string, opts Options) *Client {
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 100
		hc = &http.Client{Transport: tr}
	}
	deadline := opts.Deadline
	if deadline == 0 {
		deadline = 30 * time.Second
	}
	return &Client{
		base:     strings.TrimRight(baseURL, "/"),
		http:     hc,
		token:    opts.Token,
		policy:   opts.Policy,
		deadline: deadline,
		onRetry:  opts.OnRetry,
		position: new(atomic.Uint64),
	}
}

// WithToken returns a copy of c that sends token (none when empty) and
// shares c's connections and settings; it cannot fail.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	cp.position = new(atomic.Uint64) // another student's writes are not this one's
	return &cp
}

// Token returns the bearer token c sends, or "" when it sends none.
func (c *Client) Token() string { return c.token }

// CloseIdleConnections closes the idle connections of c's HTTP client,
// which clients derived with WithToken share; it returns nothing and
// cannot fail.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Do sends one request as it is given, for what the typed methods do not
// send (a malformed body, an odd header): path is below the base URL and
// may carry a query ("/api/v1/attempts?limit=5"). It adds
// "Authorization: Bearer" when c has a token and "Content-Type:
// application/json" when body is not nil, unless header sets them. It never
// retries, and it is bounded by Options.Deadline. It returns the response's
// status, header and body whatever the status; err is not nil only when no
// whole response was read (a transport error, ctx ended, a bad URL).
func (c *Client) Do(ctx context.Context, method, path string, header http.Header, body io.Reader) (status int, respHeader http.Header, respBody []byte, err error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	c.setDefaults(req.Header, body != nil)
	return c.roundTrip(req)
}

// bound applies the per-call deadline to ctx.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.deadline < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.deadline)
}

func (c *Client) setDefaults(h http.Header, hasBody bool) {
	if hasBody && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if c.token != "" && h.Get("Authorization") == "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	if h.Get("Accept") == "" {
		h.Set("Accept", "application/json")
	}
}

// roundTrip sends req and reads the whole response.
func (c *Client) roundTrip(req *http.Request) (int, http.Header, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("client: read the response of %s %s: %w", req.Method, req.URL.Path, err)
	}
	if len(body) > maxResponse {
		return 0, nil, nil, errResponseTooLarge
	}
	return resp.StatusCode, resp.Header, body, nil
}

// call is one logical request of a typed method.
type call struct {
	method string
	path   string // already escaped
	query  url.Values
	header http.Header
	body   any // sent as JSON when not nil
	// idempotent says that a second try can do nothing the first did not:
	// only such calls are retried.
	idempotent bool
}

// reply is the response that ended a call, and how many tries it took.
type reply struct {
	status int
	header http.Header
	body   []byte
	tries  int
}

// send makes the call, retrying it when it is idempotent and the failure is
// transient. A status of 400 or more becomes an *Error; reply.tries is set
// even when err is not nil.
func (c *Client) send(ctx context.Context, cl call) (reply, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = segjson.Marshal(cl.body); err != nil {
			return reply{}, fmt.Errorf("client: encode %s %s: %w", cl.method, cl.path, err)
		}
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	// Built once, so that a bad URL fails here and is not retried.
	req, err := http.NewRequestWithContext(ctx, cl.method, target, body)
	if err != nil {
		return reply{}, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	c.setDefaults(req.Header, payload != nil)

	var rep reply
	var answered error // the last *Error a try got
	op := func() error {
		rep.tries++
		try := req.Clone(ctx)
		if req.GetBody != nil {
			try.Body, _ = req.GetBody() // a bytes.Reader's never fails
		}
		status, h, b, err := c.roundTrip(try)
		if err != nil {
			return err
		}
		if status >= 400 {
			answered = newError(status, h, b)
			return answered
		}
		rep.status, rep.header, rep.body = status, h, b
		return nil
	}
	if cl.idempotent {
		notify := func(err error, wait time.Duration) {
			if c.onRetry != nil {
				c.onRetry(cl.method, cl.path, err, wait)
			}
		}
		err = retry.Do(ctx, c.policy, func(err error) bool { return retryable(ctx, err) }, notify, op)
	} else {
		err = op()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(err, ctxErr) && answered != nil {
				err = answered // the try ctx interrupted told nothing; an earlier one did
			}
			if !errors.Is(err, ctxErr) {
				err = &gaveUp{last: err, cause: ctxErr, tries: rep.tries}
			}
		}
		return rep, err
	}
	return rep, nil
}

// retryable says whether a failed try of an idempotent call is worth
// another: a transport error, 503 or 429, and only while ctx lasts long
// enough for the wait the server asked for.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, errResponseTooLarge) {
		return false
	}
	var e *Error
	if !errors.As(err, &e) {
		return true // a transport error
	}
	if e.Status != http.StatusServiceUnavailable && e.Status != http.StatusTooManyRequests {
		return false
	}
	if d, ok := ctx.Deadline(); ok && e.RetryAfterDelay > 0 && time.Until(d) < e.RetryAfterDelay {
		return false // waiting as asked would only end in the deadline
	}
	return true
}

// gaveUp is the last answer of the API (or the last try's error, when no
// try was answered) when ctx ended (the deadline passed, or the caller
// cancelled) before a retry could succeed. It matches both that error
// (errors.As *Error) and ctx's (errors.Is context.DeadlineExceeded).
type gaveUp struct {
	last  error
	cause error
	tries int
}

func (g *gaveUp) Error() string {
	return fmt.Sprintf("%v (gave up after %d tries: %v)", g.last, g.tries, g.cause)
}

func (g *gaveUp) Unwrap() []error { return []error{g.last, g.cause} }

// do makes the call and decodes a 2xx body into out (when not nil). Any
// other status below 400 is an error, except those listed in also.
func (c *Client) do(ctx context.Context, cl call, out any, also ...int) (reply, error) {
	rep, err := c.send(ctx, cl)
	if err != nil {
		return rep, err
	}
	for _, s := range also {
		if rep.status == s {
			return rep, nil
		}
	}
	if rep.status/100 != 2 {
		return rep, fmt.Errorf("client: %s %s: unexpected status %d", cl.method, cl.path, rep.status)
	}
	if out != nil {
		// segmentio/encoding parses what encoding/json does, to the same
		// values, at a fraction of the cost: a load generator is a client.
		if err := segjson.Unmarshal(rep.body, out); err != nil {
			return rep, fmt.Errorf("client: %s %s: decode the response: %w", cl.method, cl.path, err)
		}
	}
	return rep, nil
}
