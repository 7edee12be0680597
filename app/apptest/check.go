package apptest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
)

// This file checks what the API answered against what the test knows:
// which status each response had (the typed client returns values, not
// statuses, and retries some failures), the error body's shape, and a
// student's attempts and progress.

// statusesKey is the context key under which Statuses keeps its record.
type statusesKey struct{}

// statusRecord is the statuses of the responses of the calls made with one
// context from Statuses.
type statusRecord struct {
	mu       sync.Mutex
	statuses []int
}

// recorder is the transport of every client made by Client: it records
// each response's status in the request context's statusRecord, if any.
type recorder struct{ next http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if rec, ok := req.Context().Value(statusesKey{}).(*statusRecord); ok {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		rec.mu.Lock()
		rec.statuses = append(rec.statuses, status)
		rec.mu.Unlock()
	}
	return resp, err
}

// newHTTPClient is what client.New would make by itself, with recorder in
// front and the OpenAPI document's checks behind it (api/openapitest).
func newHTTPClient() *http.Client {
	return &http.Client{Transport: recorder{validating(transport(nil))}}
}

// transport is http.DefaultTransport's, connecting from the local address
// from when it is set.
func transport(from net.IP) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 100
	if from != nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: from}}
		tr.DialContext = d.DialContext
	}
	return tr
}

// ClientFrom is Client with its connections made from the local address
// from, a second client address to the API: every address of 127.0.0.0/8
// is the loopback interface on Linux (as bench/load's students use).
func ClientFrom(base string, from net.IP) *client.Client {
	return client.New(base, client.Options{HTTPClient: HTTPClientFrom(from)})
}

// HTTPClientFrom is the HTTP client of ClientFrom, for a client.Client
// with options of its own.
func HTTPClientFrom(from net.IP) *http.Client {
	return &http.Client{Transport: recorder{validating(transport(from))}}
}

// Statuses returns a context under which every request a client made by
// Client (or Signup, or SignupMany) sends records the HTTP status it got (0
// for a transport error), and a function that returns the statuses
// recorded so far, in order. The typed methods return values, not
// statuses, and retry 503, 429 and transport errors: a test that must see
// the API's one answer checks that exactly one status was recorded.
func Statuses(ctx context.Context) (context.Context, func() []int) {
	rec := &statusRecord{}
	return context.WithValue(ctx, statusesKey{}, rec), func() []int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return slices.Clone(rec.statuses)
	}
}

// Expect runs call (one call of a client made by Client) with a context
// from Statuses, and returns an error unless the API answered it once,
// with status want: a retried call (after a 503, say) fails it. When want
// is below 400 it also returns call's own error (a body that did not
// decode); when want is an error status, call's error is the expected
// answer and Expect returns nil.
func Expect(ctx context.Context, want int, call func(ctx context.Context) error) error {
	ctx, statuses := Statuses(ctx)
	err := call(ctx)
	if got := statuses(); len(got) != 1 || got[0] != want {
		return fmt.Errorf("HTTP statuses %v, want one %d (%v)", got, want, err)
	}
	if want >= 400 {
		return nil
	}
	return err
}

// ExpectRetried is Expect for a call under heavy load whose client retries
// 503 (the outcome of a 503 is unknown by contract, and the retry with the
// same key or seq settles it): it returns an error unless every answer but
// the last was 503 and the last was want.
func ExpectRetried(ctx context.Context, want int, call func(ctx context.Context) error) error {
	ctx, statuses := Statuses(ctx)
	err := call(ctx)
	got := statuses()
	ok := len(got) > 0 && got[len(got)-1] == want
	for _, st := range got[:max(len(got)-1, 0)] {
		ok = ok && st == http.StatusServiceUnavailable
	}
	if !ok {
		return fmt.Errorf("HTTP statuses %v, want 503s then one %d (%v)", got, want, err)
	}
	return err
}

// Submit submits answers to the quiz under the Idempotency-Key key through
// c and returns the attempt; it returns an error unless the API answered
// the one request with 202. Goroutines may call it.
func Submit(ctx context.Context, c *client.Client, quizID, key string, answers []client.Answer) (client.Attempt, error) {
	var sub client.Submission
	err := Expect(ctx, http.StatusAccepted, func(ctx context.Context) (err error) {
		sub, err = c.SubmitAttempt(ctx, quizID, answers, client.WithIdempotencyKey(key))
		return err
	})
	return sub.Attempt, err
}

// SignupMany signs n students up concurrently at the API at base, as
// "<prefix>-NN@example.com", and returns clients acting as them and their
// ids; it fails t unless every signup was answered 201.
func SignupMany(t testing.TB, base, prefix string, n int) ([]*client.Client, []string) {
	t.Helper()
	clients, ids := make([]*client.Client, n), make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	// As many at once as the API hashes passwords at once (half the CPUs),
	// plus one waiting: more would only queue for a slot, and past the
	// API's HASH_WAIT get 503, as a login flood should.
	slots := make(chan struct{}, api.DefaultHashConcurrency()+1)
	for i := range n {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			email := fmt.Sprintf("%s-%02d@example.com", prefix, i)
			c := Client(base)
			var (
				st    client.Student
				token string
			)
			errs[i] = Expect(t.Context(), http.StatusCreated, func(ctx context.Context) (err error) {
				st, token, err = c.Signup(ctx, email, "Student "+email, "correct horse")
				return err
			})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("signup %s: %w", email, errs[i])
			}
			clients[i], ids[i] = c.WithToken(token), st.ID
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return clients, ids
}

// ErrorShape reports how a raw answer of the API (as (*client.Client).Do
// returns it) differs from the HTTP contract's error body with the given status and
// code: a JSON object whose only field, error, holds exactly a code and a
// non-empty message. It returns nil when they agree.
func ErrorShape(status int, header http.Header, body []byte, wantStatus int, code string) error {
	if status != wantStatus {
		return fmt.Errorf("status %d, want %d (body %.300q)", status, wantStatus, body)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type %q, want application/json (body %.300q)", ct, body)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return fmt.Errorf("body %.300q is not a JSON object: %v", body, err)
	}
	if len(outer) != 1 || outer["error"] == nil {
		return fmt.Errorf("body %.300q: want exactly one field, error", body)
	}
	var inner map[string]any
	if err := json.Unmarshal(outer["error"], &inner); err != nil || len(inner) != 2 {
		return fmt.Errorf("body %.300q: error must be {code, message}", body)
	}
	if got, _ := inner["code"].(string); got != code {
		return fmt.Errorf("code %q, want %q (body %.300q)", inner["code"], code, body)
	}
	if msg, _ := inner["message"].(string); msg == "" {
		return fmt.Errorf("body %.300q: message must be a non-empty string", body)
	}
	return nil
}

// SameAttempt reports how b differs from a in anything but status, or
// returns nil.
func SameAttempt(a, b client.Attempt) error {
	if a.AttemptID != b.AttemptID || a.QuizID != b.QuizID || a.StudentID != b.StudentID ||
		a.Score != b.Score || a.MaxScore != b.MaxScore || !a.SubmittedAt.Equal(b.SubmittedAt) {
		return fmt.Errorf("attempt %+v differs from %+v", b, a)
	}
	return nil
}

// NewestFirst returns attempts sorted as the HTTP contract orders them: submitted_at,
// then attempt_id, both descending. A UUID's canonical text sorts as its
// bytes, which is how PostgreSQL orders uuid.
func NewestFirst(attempts []client.Attempt) []client.Attempt {
	out := slices.Clone(attempts)
	slices.SortFunc(out, func(a, b client.Attempt) int {
		if c := b.SubmittedAt.Compare(a.SubmittedAt); c != 0 {
			return c
		}
		return strings.Compare(b.AttemptID, a.AttemptID)
	})
	return out
}

// AttemptIDs returns the attempts' ids, in order.
func AttemptIDs(attempts []client.Attempt) []string {
	out := make([]string, len(attempts))
	for i, a := range attempts {
		out[i] = a.AttemptID
	}
	return out
}

// ListAttempts pages through the caller's attempts from q (q.Limit 0 is
// the API's default page of 20), and returns them in the order served. It
// returns an error when a page was not answered 200 at the first try, a
// page's attempts are null, a page holds more than the limit, or a page
// with a next cursor is not full. Goroutines may call it.
func ListAttempts(ctx context.Context, c *client.Client, q client.AttemptsQuery) ([]client.Attempt, error) {
	limit := q.Limit
	if limit == 0 {
		limit = 20
	}
	var out []client.Attempt
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, errors.New("list attempts: more than 1000 pages")
		}
		var p client.AttemptPage
		if err := Expect(ctx, http.StatusOK, func(ctx context.Context) (err error) {
			p, err = c.Attempts(ctx, q)
			return err
		}); err != nil {
			return nil, fmt.Errorf("list attempts %+v: %w", q, err)
		}
		if p.Attempts == nil {
			return nil, fmt.Errorf("list attempts %+v: attempts is null, want a list", q)
		}
		out = append(out, p.Attempts...)
		if p.NextCursor == "" {
			if len(p.Attempts) > limit {
				return nil, fmt.Errorf("list attempts %+v: %d attempts on a page of %d", q, len(p.Attempts), limit)
			}
			return out, nil
		}
		if len(p.Attempts) != limit {
			return nil, fmt.Errorf("list attempts %+v: %d attempts on a page of %d with a next cursor", q, len(p.Attempts), limit)
		}
		q.Cursor = p.NextCursor
	}
}

// WantProgress computes a student's progress over the demo content from
// their distinct attempts (the 202 bodies): every course, untouched ones
// at zero, keyed by course id.
func WantProgress(attempts []client.Attempt) map[string]client.CourseProgress {
	want := map[string]client.CourseProgress{}
	quizCourse := map[string]string{}
	for _, c := range store.DemoContent(store.DefaultDemo) {
		want[c.ID.String()] = client.CourseProgress{CourseID: c.ID.String(), QuizzesTotal: len(c.Quizzes), BestScores: map[string]int{}}
		for _, q := range c.Quizzes {
			quizCourse[q.ID.String()] = c.ID.String()
		}
	}
	for _, a := range attempts {
		cp := want[quizCourse[a.QuizID]]
		cp.Attempts++
		best, seen := cp.BestScores[a.QuizID]
		if !seen {
			cp.QuizzesAttempted++
		}
		if !seen || a.Score > best {
			cp.BestScores[a.QuizID] = a.Score
		}
		want[cp.CourseID] = cp
	}
	return want
}

// CheckProgress compares the caller's progress with want (which it
// empties); it returns what differs, or an error when the API did not
// answer 200 at the first try. Goroutines may call it.
func CheckProgress(ctx context.Context, c *client.Client, want map[string]client.CourseProgress) error {
	var got client.Progress
	if err := Expect(ctx, http.StatusOK, func(ctx context.Context) (err error) {
		got, err = c.Progress(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	if len(got.Courses) != len(want) {
		return fmt.Errorf("progress lists %d courses, want %d", len(got.Courses), len(want))
	}
	for _, cp := range got.Courses {
		w, ok := want[cp.CourseID]
		switch {
		case !ok:
			return fmt.Errorf("progress: unknown course %s", cp.CourseID)
		case cp.BestScores == nil:
			return fmt.Errorf("progress: course %s: best_scores is null, want an object", cp.CourseID)
		case cp.QuizzesTotal != w.QuizzesTotal || cp.QuizzesAttempted != w.QuizzesAttempted ||
			cp.Attempts != w.Attempts || !maps.Equal(cp.BestScores, w.BestScores):
			return fmt.Errorf("progress: course %s is %+v, want %+v", cp.CourseID, cp, w)
		}
		delete(want, cp.CourseID) // so that a course listed twice is reported
	}
	if len(want) != 0 {
		return fmt.Errorf("progress: courses missing or listed twice: %d", len(want))
	}
	return nil
}
