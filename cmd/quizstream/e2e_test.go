package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

// End-to-end and contract tests: each runs the API and (where it matters)
// workers in process against a private PostgreSQL database and a private
// JetStream server, and talks HTTP to them as API.md's clients do.

// e2eResponse is a raw HTTP answer.
type e2eResponse struct {
	status int
	header http.Header
	body   []byte
}

// e2eDo sends a request with a raw body (nil for none) and returns the raw
// answer; it does not touch t, so goroutines may call it.
func e2eDo(method, target string, header map[string]string, body io.Reader) (e2eResponse, error) {
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return e2eResponse{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return e2eResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return e2eResponse{status: resp.StatusCode, header: resp.Header, body: raw}, err
}

// e2eGet sends an authenticated GET (token may be empty) and fails t on a
// transport error.
func e2eGet(t testing.TB, base, token, path string, header map[string]string) e2eResponse {
	t.Helper()
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for k, v := range header {
		h[k] = v
	}
	r, err := e2eDo("GET", base+path, h, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// e2eErrorShape checks that r is API.md's error body with the given status
// and code, and returns what is wrong, or nil.
func e2eErrorShape(r e2eResponse, status int, code string) error {
	if r.status != status {
		return fmt.Errorf("status %d, want %d (body %.300q)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type %q, want application/json (body %.300q)", ct, r.body)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &outer); err != nil {
		return fmt.Errorf("body %.300q is not a JSON object: %v", r.body, err)
	}
	if len(outer) != 1 || outer["error"] == nil {
		return fmt.Errorf("body %.300q: want exactly one field, error", r.body)
	}
	var inner map[string]any
	if err := json.Unmarshal(outer["error"], &inner); err != nil || len(inner) != 2 {
		return fmt.Errorf("body %.300q: error must be {code, message}", r.body)
	}
	if got, _ := inner["code"].(string); got != code {
		return fmt.Errorf("code %q, want %q (body %.300q)", inner["code"], code, r.body)
	}
	if msg, _ := inner["message"].(string); msg == "" {
		return fmt.Errorf("body %.300q: message must be a non-empty string", r.body)
	}
	return nil
}

func e2eCheckError(t testing.TB, what string, r e2eResponse, status int, code string) {
	t.Helper()
	if err := e2eErrorShape(r, status, code); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// e2eSignup creates a student and returns its client and id; it does not
// touch t, so goroutines may call it.
func e2eSignup(base, email string) (*client, string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "name": "Student " + email, "password": "correct horse"})
	r, err := e2eDo("POST", base+"/api/v1/signup", map[string]string{"Content-Type": "application/json"}, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	if r.status != http.StatusCreated {
		return nil, "", fmt.Errorf("signup %s: status %d: %s", email, r.status, r.body)
	}
	var out struct {
		Student struct {
			ID string `json:"id"`
		} `json:"student"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		return nil, "", fmt.Errorf("signup %s: %v", email, err)
	}
	return &client{base: base, token: out.Token, http: httpClient}, out.Student.ID, nil
}

// e2eSignupMany signs up n students concurrently.
func e2eSignupMany(t testing.TB, base, prefix string, n int) ([]*client, []string) {
	t.Helper()
	clients, ids := make([]*client, n), make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			clients[i], ids[i], errs[i] = e2eSignup(base, fmt.Sprintf("%s-%02d@example.com", prefix, i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return clients, ids
}

// sameAttempt reports how b differs from a in anything but status.
func sameAttempt(a, b attemptBody) error {
	if a.AttemptID != b.AttemptID || a.QuizID != b.QuizID || a.StudentID != b.StudentID ||
		a.Score != b.Score || a.MaxScore != b.MaxScore || !a.SubmittedAt.Equal(b.SubmittedAt) {
		return fmt.Errorf("attempt %+v differs from %+v", b, a)
	}
	return nil
}

func shuffled(answers []events.Answer, rng *rand.Rand) []events.Answer {
	out := slices.Clone(answers)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// e2eCourseProgress is one course of GET /student-progress.
type e2eCourseProgress struct {
	CourseID         string         `json:"course_id"`
	QuizzesTotal     int            `json:"quizzes_total"`
	QuizzesAttempted int            `json:"quizzes_attempted"`
	Attempts         int            `json:"attempts"`
	BestScores       map[string]int `json:"best_scores"`
}

// e2eWantProgress computes a student's progress from the 202 bodies of
// their distinct attempts: every demo course, untouched ones at zero.
func e2eWantProgress(quizCourse map[string]string, attempts []attemptBody) map[string]e2eCourseProgress {
	want := map[string]e2eCourseProgress{}
	for _, c := range store.DemoContent(store.DefaultDemo) {
		want[c.ID.String()] = e2eCourseProgress{CourseID: c.ID.String(), QuizzesTotal: len(c.Quizzes), BestScores: map[string]int{}}
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

// e2eCheckProgress compares GET /student-progress with want; it returns
// what differs, or nil. Goroutines may call it.
func e2eCheckProgress(c *client, want map[string]e2eCourseProgress) error {
	status, raw, err := c.do("GET", "/api/v1/student-progress", nil, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("progress: status %d: %s", status, raw)
	}
	var got struct {
		Courses []e2eCourseProgress `json:"courses"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("progress: %v", err)
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
			cp.Attempts != w.Attempts || !mapsEqual(cp.BestScores, w.BestScores):
			return fmt.Errorf("progress: course %s is %+v, want %+v", cp.CourseID, cp, w)
		}
		delete(want, cp.CourseID) // so that a course listed twice is reported
	}
	if len(want) != 0 {
		return fmt.Errorf("progress: courses missing or listed twice: %d", len(want))
	}
	return nil
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// e2eAttemptPage is the body of GET /attempts.
type e2eAttemptPage struct {
	Attempts   []attemptBody `json:"attempts"`
	NextCursor *string       `json:"next_cursor"`
}

// e2eListAll pages through GET /attempts with the given query (limit, quiz_id),
// checking that every full page but the last carries a cursor; it returns
// every attempt in the order served. Goroutines may call it.
func e2eListAll(c *client, query url.Values, limit int) ([]attemptBody, error) {
	var out []attemptBody
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, errors.New("list attempts: more than 1000 pages")
		}
		path := "/api/v1/attempts"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		status, raw, err := c.do("GET", path, nil, nil)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d: %s", path, status, raw)
		}
		var p e2eAttemptPage
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("GET %s: %v", path, err)
		}
		if p.Attempts == nil {
			return nil, fmt.Errorf("GET %s: attempts is null, want a list", path)
		}
		out = append(out, p.Attempts...)
		if p.NextCursor == nil {
			if len(p.Attempts) > limit {
				return nil, fmt.Errorf("GET %s: %d attempts on a page of %d", path, len(p.Attempts), limit)
			}
			return out, nil
		}
		if len(p.Attempts) != limit {
			return nil, fmt.Errorf("GET %s: %d attempts on a page of %d with a next cursor", path, len(p.Attempts), limit)
		}
		q.Set("cursor", *p.NextCursor)
	}
}

// newestFirst sorts attempts as API.md orders them: submitted_at, then
// attempt_id, both descending. A UUID's canonical text sorts as its bytes,
// which is how PostgreSQL orders uuid.
func newestFirst(attempts []attemptBody) []attemptBody {
	out := slices.Clone(attempts)
	slices.SortFunc(out, func(a, b attemptBody) int {
		if c := b.SubmittedAt.Compare(a.SubmittedAt); c != 0 {
			return c
		}
		return strings.Compare(b.AttemptID, a.AttemptID)
	})
	return out
}

func attemptIDs(attempts []attemptBody) []string {
	out := make([]string, len(attempts))
	for i, a := range attempts {
		out[i] = a.AttemptID
	}
	return out
}

func quizCourses(s *stack) map[string]string {
	m := map[string]string{}
	for _, q := range s.Quizzes {
		m[q.ID.String()] = q.CourseID.String()
	}
	return m
}

// e2eSubmission is one logical submission of TestEndToEnd and every 202
// it got.
type e2eSubmission struct {
	student int
	key     string
	quiz    store.Quiz
	answers []events.Answer
	score   int
	first   attemptBody   // the answer to the original
	retries []attemptBody // the answers to re-sends of it
	late    bool          // re-sent only after the workers drained
}

func TestEndToEnd(t *testing.T) {
	// Not parallel: it reports throughput, so it runs on its own.
	const (
		students   = 50
		perStudent = 40 // 2,000 attempts; every 10th is re-sent once
	)
	s := newStack(t, events.StreamConfig{})
	a := s.startAPI(t, api.Config{})
	s.startWorker(t, worker.Config{})
	s.startWorker(t, worker.Config{})

	// Twelve quizzes over four courses, three each.
	var pool []store.Quiz
	for _, c := range []int{0, 3, 7, 19} {
		for _, q := range []int{0, 4, 9} {
			pool = append(pool, s.Quizzes[c*store.DefaultDemo.Quizzes+q])
		}
	}
	clients, ids := e2eSignupMany(t, a.URL, "e2e", students)

	subs := make([][]*e2eSubmission, students)
	var accepted atomic.Int64
	post := func(c *client, sub *e2eSubmission, answers []events.Answer) (attemptBody, error) {
		status, body, err := c.submit(sub.quiz.ID.String(), sub.key, answers)
		if err != nil {
			return body, fmt.Errorf("student %d key %s: %v", sub.student, sub.key, err)
		}
		if status != http.StatusAccepted {
			return body, fmt.Errorf("student %d key %s: status %d", sub.student, sub.key, status)
		}
		accepted.Add(1)
		return body, nil
	}
	start := time.Now()
	var wg sync.WaitGroup
	for j := range students {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(7, uint64(j)))
			c := clients[j]
			for i := range perStudent {
				q := pool[rng.IntN(len(pool))]
				right := rng.IntN(len(q.Questions) + 1)
				answers := answersFor(q, right)
				if i%7 == 3 {
					// A partial list: unanswered questions score zero.
					answers = answers[:right]
				}
				sub := &e2eSubmission{student: j, key: fmt.Sprintf("e2e-%02d-%02d", j, i), quiz: q, answers: answers, score: right}
				subs[j] = append(subs[j], sub)
				var err error
				switch {
				case i%20 == 0:
					// The re-send races the original.
					var (
						pair [2]attemptBody
						errs [2]error
						go2  sync.WaitGroup
					)
					ready := make(chan struct{})
					for k := range 2 {
						go2.Go(func() {
							<-ready
							pair[k], errs[k] = post(c, sub, shuffled(answers, rng2(j, i, k)))
						})
					}
					close(ready)
					go2.Wait()
					sub.first, sub.retries = pair[0], []attemptBody{pair[1]}
					err = errors.Join(errs[:]...)
				case i%20 == 10:
					sub.first, err = post(c, sub, answers)
					if err == nil && i < 20 {
						// Re-sent right after its 202, answers in another order.
						var again attemptBody
						again, err = post(c, sub, shuffled(answers, rng))
						sub.retries = append(sub.retries, again)
					}
					sub.late = i >= 20
				default:
					sub.first, err = post(c, sub, answers)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	n := accepted.Load()
	t.Logf("accepted %d POSTs (%d distinct attempts) from %d concurrent students in %s: %.0f 202s/s",
		n, students*perStudent, students, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	drainStart := time.Now()
	s.waitDrained(t, 60*time.Second)
	t.Logf("workers drained the stream %s after the last 202", time.Since(drainStart).Round(time.Millisecond))

	// Late re-sends: after the workers stored the originals.
	for j := range students {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(8, uint64(j)))
			for _, sub := range subs[j] {
				if !sub.late {
					continue
				}
				again, err := post(clients[j], sub, shuffled(sub.answers, rng))
				if err != nil {
					t.Error(err)
					return
				}
				if again.Status != "recorded" {
					t.Errorf("late re-send of %s: status %q, want recorded", sub.key, again.Status)
				}
				sub.retries = append(sub.retries, again)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s.waitDrained(t, 30*time.Second)

	// Every 202: the right student, quiz and score; re-sends the same attempt.
	var all []*e2eSubmission
	distinct := map[string]bool{}
	retries := 0
	for j := range students {
		for _, sub := range subs[j] {
			all = append(all, sub)
			f := sub.first
			if f.StudentID != ids[j] || f.QuizID != sub.quiz.ID.String() || f.Score != sub.score ||
				f.MaxScore != len(sub.quiz.Questions) || f.SubmittedAt.IsZero() || f.AttemptID == "" {
				t.Errorf("student %d key %s: 202 %+v, want student %s quiz %s score %d of %d",
					j, sub.key, f, ids[j], sub.quiz.ID, sub.score, len(sub.quiz.Questions))
			}
			if f.Status != "accepted" && f.Status != "recorded" {
				t.Errorf("key %s: status %q", sub.key, f.Status)
			}
			if distinct[f.AttemptID] {
				t.Errorf("key %s: attempt id %s given to two submissions", sub.key, f.AttemptID)
			}
			distinct[f.AttemptID] = true
			for _, r := range sub.retries {
				retries++
				if err := sameAttempt(f, r); err != nil {
					t.Errorf("re-send of %s: %v", sub.key, err)
				}
				if r.Status != "accepted" && r.Status != "recorded" {
					t.Errorf("re-send of %s: status %q", sub.key, r.Status)
				}
			}
			if len(sub.retries) > 0 && sub.first.Status != "accepted" && sub.retries[0].Status != "accepted" {
				t.Errorf("key %s: neither copy was answered as newly accepted", sub.key)
			}
		}
	}
	if retries != students*perStudent/10 {
		t.Errorf("%d re-sends, want %d", retries, students*perStudent/10)
	}

	// The stream and the database hold each submission exactly once.
	if got := eventstest.StreamMessages(t, s.JS, s.Stream.Name); got != uint64(len(all)) {
		t.Errorf("stream holds %d messages, want %d", got, len(all))
	}
	if got := s.countAttempts(t); got != len(all) {
		t.Errorf("database holds %d attempts, want %d", got, len(all))
	}
	type rowKey struct{ student, key string }
	perKey := map[rowKey]int{}
	rows, err := s.Store.Pool().Query(t.Context(),
		`SELECT student_id::text, coalesce(idempotency_key, ''), count(*) FROM attempts GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k rowKey
		var n int
		if err := rows.Scan(&k.student, &k.key, &n); err != nil {
			t.Fatal(err)
		}
		perKey[k] = n
		if n != 1 {
			t.Errorf("student %s key %q: %d stored attempts, want 1", k.student, k.key, n)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	type storedRow struct {
		id, quiz, status string
		score, maxScore  int
		submittedAt      time.Time
	}
	stored := map[rowKey]storedRow{}
	rows, err = s.Store.Pool().Query(t.Context(),
		`SELECT student_id::text, coalesce(idempotency_key, ''), id::text, quiz_id::text, status, score, max_score, submitted_at FROM attempts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k rowKey
		var r storedRow
		if err := rows.Scan(&k.student, &k.key, &r.id, &r.quiz, &r.status, &r.score, &r.maxScore, &r.submittedAt); err != nil {
			t.Fatal(err)
		}
		stored[k] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range all {
		k := rowKey{ids[sub.student], sub.key}
		r, ok := stored[k]
		f := sub.first
		switch {
		case !ok || perKey[k] != 1:
			t.Errorf("student %s key %s: %d stored attempts, want 1", k.student, k.key, perKey[k])
		case r.id != f.AttemptID || r.quiz != f.QuizID || r.score != f.Score || r.maxScore != f.MaxScore ||
			!r.submittedAt.Equal(f.SubmittedAt) || r.status != "recorded":
			t.Errorf("student %s key %s: stored %+v, the 202 said %+v", k.student, k.key, r, f)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Each student's reads agree with the 202 bodies they got.
	quizCourse := quizCourses(s)
	limits := []int{0, 7, 13, 40, 100} // 0: the default, 20
	for j := range students {
		wg.Go(func() {
			c := clients[j]
			var mine []attemptBody
			for _, sub := range subs[j] {
				mine = append(mine, sub.first)
			}
			if err := e2eCheckProgress(c, e2eWantProgress(quizCourse, mine)); err != nil {
				t.Errorf("student %d: %v", j, err)
			}
			q, limit := url.Values{}, limits[j%len(limits)]
			if limit == 0 {
				limit = 20
			} else {
				q.Set("limit", strconv.Itoa(limit))
			}
			listed, err := e2eListAll(c, q, limit)
			if err != nil {
				t.Errorf("student %d: %v", j, err)
				return
			}
			want := newestFirst(mine)
			if !slices.Equal(attemptIDs(listed), attemptIDs(want)) {
				t.Errorf("student %d: GET /attempts (limit %d) listed\n%v\nwant\n%v", j, limit, attemptIDs(listed), attemptIDs(want))
				return
			}
			for i, got := range listed {
				if err := sameAttempt(want[i], got); err != nil || got.Status != "recorded" {
					t.Errorf("student %d: listed %+v, want %+v recorded (%v)", j, got, want[i], err)
				}
			}
			for _, w := range mine {
				var got attemptBody
				status, raw, err := c.do("GET", "/api/v1/attempts/"+w.AttemptID, nil, nil)
				if err == nil && status == http.StatusOK {
					err = json.Unmarshal(raw, &got)
				}
				if err != nil || status != http.StatusOK {
					t.Errorf("student %d: GET attempt %s: %d %s %v", j, w.AttemptID, status, raw, err)
					continue
				}
				if err := sameAttempt(w, got); err != nil || got.Status != "recorded" {
					t.Errorf("student %d: GET attempt %s = %+v, want %+v recorded (%v)", j, w.AttemptID, got, w, err)
				}
			}
		})
	}
	wg.Wait()
}

// rng2 is a generator for one of the two racing copies of a submission, so
// that the two goroutines share no generator.
func rng2(student, attempt, copy int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(student)<<32|uint64(attempt), uint64(copy)))
}

func TestLateRetry(t *testing.T) {
	t.Parallel()
	const window = time.Second
	s := newStack(t, events.StreamConfig{Duplicates: window})
	a := s.startAPI(t, api.Config{})
	s.startWorker(t, worker.Config{})
	clients, ids := e2eSignupMany(t, a.URL, "late", 2)
	c1, c2 := clients[0], clients[1]
	q0, q1 := s.Quizzes[0], s.Quizzes[1]
	answers := answersFor(q0, 6)
	reversed := slices.Clone(answers)
	slices.Reverse(reversed)
	other := answersFor(q0, 5)
	msgs := func() uint64 { return eventstest.StreamMessages(t, s.JS, s.Stream.Name) }

	status, orig, err := c1.submit(q0.ID.String(), "k1", answers)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("submit: %d %v", status, err)
	}
	if orig.Score != 6 || orig.MaxScore != 10 || orig.StudentID != ids[0] || orig.Status != "accepted" {
		t.Fatalf("submit: %+v", orig)
	}
	if n := msgs(); n != 1 {
		t.Fatalf("stream holds %d messages after one submission", n)
	}

	// retry re-sends the same submission and expects the original back with
	// the stream unchanged.
	retry := func(when string, ans []events.Answer, wantStatus ...string) {
		t.Helper()
		status, got, err := c1.submit(q0.ID.String(), "k1", ans)
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("%s: retry: %d %v", when, status, err)
		}
		if err := sameAttempt(orig, got); err != nil {
			t.Errorf("%s: retry: %v", when, err)
		}
		if !slices.Contains(wantStatus, got.Status) {
			t.Errorf("%s: retry: status %q, want one of %q", when, got.Status, wantStatus)
		}
		if n := msgs(); n != 1 {
			t.Errorf("%s: retry: stream holds %d messages, want 1", when, n)
		}
	}
	// reuse sends the key with another submission and expects 422.
	reuse := func(when string, quiz store.Quiz, ans []events.Answer) {
		t.Helper()
		r, err := e2eDo("POST", a.URL+"/api/v1/quizzes/"+quiz.ID.String()+"/attempts",
			map[string]string{"Authorization": "Bearer " + c1.token, "Content-Type": "application/json", "Idempotency-Key": "k1"},
			bytes.NewReader(mustJSON(t, map[string]any{"answers": ans})))
		if err != nil {
			t.Fatal(err)
		}
		e2eCheckError(t, when+": key reused", r, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if n := msgs(); n != 1 {
			t.Errorf("%s: key reused: stream holds %d messages, want 1", when, n)
		}
	}

	// Within the duplicate window.
	retry("within the window", answers, "accepted", "recorded")
	retry("within the window, answers reordered", reversed, "accepted", "recorded")
	reuse("within the window, other answers", q0, other)
	reuse("within the window, another quiz", q1, answersFor(q1, 6))
	reuse("within the window, fewer answers", q0, answers[:9])

	// Past the window only the stream's per-subject guard can recognise the key.
	s.waitDrained(t, 10*time.Second)
	time.Sleep(window + 500*time.Millisecond)
	retry("past the window", answers, "recorded")
	retry("past the window, answers reordered", reversed, "recorded")
	reuse("past the window, other answers", q0, other)
	reuse("past the window, another quiz", q1, answersFor(q1, 6))
	retry("past the window, after the 422s", answers, "recorded")

	// Another student's key is theirs alone.
	status, theirs, err := c2.submit(q0.ID.String(), "k1", other)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("other student: %d %v", status, err)
	}
	if theirs.AttemptID == orig.AttemptID || theirs.StudentID != ids[1] || theirs.Score != 5 || theirs.Status != "accepted" {
		t.Errorf("other student, same key: %+v (first student's: %+v)", theirs, orig)
	}
	if n := msgs(); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}

	// The stored attempts are the originals, untouched by the 422s.
	s.waitDrained(t, 10*time.Second)
	if n := s.countAttempts(t); n != 2 {
		t.Errorf("database holds %d attempts, want 2", n)
	}
	var (
		id, quiz    string
		score       int
		hash        []byte
		submittedAt time.Time
	)
	err = s.Store.Pool().QueryRow(t.Context(),
		`SELECT id::text, quiz_id::text, score, answers_hash, submitted_at FROM attempts WHERE student_id = $1 AND idempotency_key = 'k1'`,
		ids[0]).Scan(&id, &quiz, &score, &hash, &submittedAt)
	if err != nil {
		t.Fatal(err)
	}
	if id != orig.AttemptID || quiz != q0.ID.String() || score != 6 || !submittedAt.Equal(orig.SubmittedAt) ||
		!bytes.Equal(hash, events.HashAnswers(q0.ID, answers)) {
		t.Errorf("stored attempt %s quiz %s score %d at %s, want the original %+v", id, quiz, score, submittedAt, orig)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	a := s.startAPI(t, api.Config{})
	clients, _ := e2eSignupMany(t, a.URL, "bad", 1)
	c := clients[0]
	q0, q1 := s.Quizzes[0], s.Quizzes[1]
	attempts := func(quiz string) string { return "/api/v1/quizzes/" + quiz + "/attempts" }
	q0path := attempts(q0.ID.String())

	// A key of exactly 128 characters is valid; reusing it is what 422 is for.
	takenKey := strings.Repeat("k", 128)
	status, _, err := c.submit(q0.ID.String(), takenKey, answersFor(q0, 3))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("submit with a 128-character key: %d %v", status, err)
	}
	const seeded = 1
	if n := eventstest.StreamMessages(t, s.JS, s.Stream.Name); n != seeded {
		t.Fatalf("stream holds %d messages, want %d", n, seeded)
	}

	body := func(v any) []byte { return mustJSON(t, v) }
	ans := func(pairs ...string) map[string]any {
		list := []map[string]string{}
		for i := 0; i < len(pairs); i += 2 {
			list = append(list, map[string]string{"question_id": pairs[i], "choice_id": pairs[i+1]})
		}
		return map[string]any{"answers": list}
	}
	qu := func(q store.Quiz, i int) string { return q.Questions[i].ID.String() }
	ch := func(q store.Quiz, i, j int) string { return q.Questions[i].Choices[j].ID.String() }
	valid := body(ans(qu(q0, 0), ch(q0, 0, 0)))
	oversized := body(map[string]any{"answers": []any{}, "padding": strings.Repeat("x", 65<<10)})
	malformed := []byte(`{"answers": [`)
	longKey := strings.Repeat("k", 129)
	unknownQuiz := attempts(uuid.NewString())
	bogusToken := base64.RawURLEncoding.EncodeToString(make([]byte, 32)) // well formed, never issued

	type tc struct {
		name         string
		method, path string
		token        string // "": the student's; "-": none; else sent as is
		ctype        string // "": application/json; "-": none
		key          string
		body         []byte
		chunked      bool // send the body without a Content-Length
		status       int
		code         string
	}
	cases := []tc{
		{name: "no token", path: q0path, token: "-", body: valid, status: 401, code: "unauthorized"},
		{name: "token never issued", path: q0path, token: "Bearer " + bogusToken, body: valid, status: 401, code: "unauthorized"},
		{name: "token malformed", path: q0path, token: "Bearer abc", body: valid, status: 401, code: "unauthorized"},
		{name: "token in another scheme", path: q0path, token: "Basic " + c.token, body: valid, status: 401, code: "unauthorized"},
		{name: "body over 64 KiB", path: q0path, body: oversized, status: 413, code: "payload_too_large"},
		{name: "body over 64 KiB, chunked", path: q0path, body: oversized, chunked: true, status: 413, code: "payload_too_large"},
		{name: "Content-Type text/plain", path: q0path, ctype: "text/plain", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "Content-Type form", path: q0path, ctype: "application/x-www-form-urlencoded", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "no Content-Type", path: q0path, ctype: "-", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "malformed JSON", path: q0path, body: malformed, status: 400, code: "invalid_request"},
		{name: "empty body", path: q0path, ctype: "application/json", body: nil, status: 400, code: "invalid_request"},
		{name: "JSON then garbage", path: q0path, body: append(slices.Clone(valid), "x"...), status: 400, code: "invalid_request"},
		{name: "answers missing", path: q0path, body: []byte(`{}`), status: 400, code: "invalid_request"},
		{name: "answers null", path: q0path, body: []byte(`{"answers": null}`), status: 400, code: "invalid_request"},
		{name: "answers an object", path: q0path, body: []byte(`{"answers": {}}`), status: 400, code: "invalid_request"},
		{name: "answers a string", path: q0path, body: []byte(`{"answers": "all of them"}`), status: 400, code: "invalid_request"},
		{name: "body a list", path: q0path, body: []byte(`[]`), status: 400, code: "invalid_request"},
		{name: "answer ids not strings", path: q0path, body: []byte(`{"answers": [{"question_id": 1, "choice_id": 2}]}`), status: 400, code: "invalid_request"},
		{name: "unknown quiz", path: unknownQuiz, body: valid, status: 404, code: "not_found"},
		{name: "quiz id not a UUID", path: attempts("quiz-1"), body: valid, status: 404, code: "not_found"},
		{name: "unknown question", path: q0path, body: body(ans(uuid.NewString(), ch(q0, 0, 0))), status: 400, code: "invalid_request"},
		{name: "question of another quiz", path: q0path, body: body(ans(qu(q1, 0), ch(q1, 0, 0))), status: 400, code: "invalid_request"},
		{name: "unknown choice", path: q0path, body: body(ans(qu(q0, 0), uuid.NewString())), status: 400, code: "invalid_request"},
		{name: "choice of another question", path: q0path, body: body(ans(qu(q0, 0), ch(q0, 1, 0))), status: 400, code: "invalid_request"},
		{name: "question answered twice", path: q0path, body: body(ans(qu(q0, 0), ch(q0, 0, 0), qu(q0, 0), ch(q0, 0, 1))), status: 400, code: "invalid_request"},
		{name: "question answered twice alike", path: q0path, body: body(ans(qu(q0, 2), ch(q0, 2, 1), qu(q0, 2), ch(q0, 2, 1))), status: 400, code: "invalid_request"},
		{name: "Idempotency-Key over 128 characters", path: q0path, key: longKey, body: valid, status: 400, code: "invalid_request"},
		{name: "Idempotency-Key reused", path: q0path, key: takenKey, body: valid, status: 422, code: "idempotency_key_reused"},
		{name: "Idempotency-Key reused on another quiz", path: attempts(q1.ID.String()), key: takenKey, body: body(ans(qu(q1, 0), ch(q1, 0, 0))), status: 422, code: "idempotency_key_reused"},
		{name: "unknown path", method: "GET", path: "/api/v1/nothing-here", status: 404, code: "not_found"},
		{name: "unknown path, no token", method: "GET", path: "/api/v1/nothing-here", token: "-", status: 404, code: "not_found"},
		{name: "unknown path outside the API", method: "GET", path: "/nothing-here", status: 404, code: "not_found"},
		{name: "unknown path under attempts", path: q0path + "/extra", body: valid, status: 404, code: "not_found"},
		{name: "GET on the attempts POST", method: "GET", path: q0path, status: 405, code: "method_not_allowed"},
		{name: "PUT on the attempts POST", method: "PUT", path: q0path, body: valid, status: 405, code: "method_not_allowed"},
		{name: "DELETE on courses", method: "DELETE", path: "/api/v1/courses", status: 405, code: "method_not_allowed"},
		{name: "GET on signup", method: "GET", path: "/api/v1/signup", status: 405, code: "method_not_allowed"},
		{name: "POST on progress", path: "/api/v1/student-progress", body: valid, status: 405, code: "method_not_allowed"},
		{name: "signup, malformed", path: "/api/v1/signup", token: "-", body: malformed, status: 400, code: "invalid_request"},
		{name: "signup, wrong type", path: "/api/v1/signup", token: "-", ctype: "text/plain", body: []byte(`{}`), status: 415, code: "unsupported_media_type"},
		{name: "signup, oversized", path: "/api/v1/signup", token: "-", body: oversized, status: 413, code: "payload_too_large"},
		{name: "login, malformed", path: "/api/v1/login", token: "-", body: malformed, status: 400, code: "invalid_request"},

		// Precedence: 401, 413, 415, 400 (malformed), 404, 400 (invalid content), 422.
		{name: "no token + oversized", path: q0path, token: "-", body: oversized, status: 401, code: "unauthorized"},
		{name: "no token + wrong type + malformed", path: unknownQuiz, token: "-", ctype: "text/plain", body: malformed, status: 401, code: "unauthorized"},
		{name: "oversized + wrong type", path: q0path, ctype: "text/plain", body: oversized, status: 413, code: "payload_too_large"},
		{name: "oversized, chunked + wrong type", path: q0path, ctype: "text/plain", body: oversized, chunked: true, status: 413, code: "payload_too_large"},
		{name: "oversized + unknown quiz", path: unknownQuiz, body: oversized, status: 413, code: "payload_too_large"},
		{name: "wrong type + malformed", path: q0path, ctype: "text/plain", body: malformed, status: 415, code: "unsupported_media_type"},
		{name: "wrong type + unknown quiz", path: unknownQuiz, ctype: "text/plain", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "malformed + unknown quiz", path: unknownQuiz, body: malformed, status: 400, code: "invalid_request"},
		{name: "malformed + quiz id not a UUID", path: attempts("quiz-1"), body: malformed, status: 400, code: "invalid_request"},
		{name: "answers missing + unknown quiz", path: unknownQuiz, body: []byte(`{}`), status: 400, code: "invalid_request"},
		{name: "unknown quiz + unknown question", path: unknownQuiz, body: body(ans(uuid.NewString(), uuid.NewString())), status: 404, code: "not_found"},
		{name: "unknown quiz + key over 128", path: unknownQuiz, key: longKey, body: valid, status: 404, code: "not_found"},
		{name: "unknown quiz + key reused", path: unknownQuiz, key: takenKey, body: valid, status: 404, code: "not_found"},
		{name: "unknown question + key reused", path: q0path, key: takenKey, body: body(ans(uuid.NewString(), ch(q0, 0, 0))), status: 400, code: "invalid_request"},
		{name: "answered twice + key reused", path: q0path, key: takenKey, body: body(ans(qu(q0, 0), ch(q0, 0, 0), qu(q0, 0), ch(q0, 0, 1))), status: 400, code: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "POST"
			}
			h := map[string]string{}
			switch tc.token {
			case "":
				h["Authorization"] = "Bearer " + c.token
			case "-":
			default:
				h["Authorization"] = tc.token
			}
			switch tc.ctype {
			case "":
				if tc.body != nil {
					h["Content-Type"] = "application/json"
				}
			case "-":
			default:
				h["Content-Type"] = tc.ctype
			}
			if tc.key != "" {
				h["Idempotency-Key"] = tc.key
			}
			var rd io.Reader
			if tc.body != nil {
				rd = bytes.NewReader(tc.body)
				if tc.chunked {
					rd = io.MultiReader(rd) // hides the length: sent chunked
				}
			}
			before := eventstest.StreamMessages(t, s.JS, s.Stream.Name)
			r, err := e2eDo(method, a.URL+tc.path, h, rd)
			if err != nil {
				t.Fatal(err)
			}
			e2eCheckError(t, method+" "+tc.path, r, tc.status, tc.code)
			if after := eventstest.StreamMessages(t, s.JS, s.Stream.Name); after != before {
				t.Errorf("the stream went from %d to %d messages", before, after)
			}
		})
	}
	if n := eventstest.StreamMessages(t, s.JS, s.Stream.Name); n != seeded {
		t.Errorf("stream holds %d messages after the bad inputs, want %d", n, seeded)
	}
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	a := s.startAPI(t, api.Config{})
	post := func(path string, body any) e2eResponse {
		t.Helper()
		r, err := e2eDo("POST", a.URL+path, map[string]string{"Content-Type": "application/json"}, bytes.NewReader(mustJSON(t, body)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	type signupBody struct {
		Student struct {
			ID        string    `json:"id"`
			Email     string    `json:"email"`
			Name      string    `json:"name"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"student"`
		Token string `json:"token"`
	}

	// Validation, including the bounds themselves.
	long := func(n int) string { return strings.Repeat("a", n) }
	email254 := long(254-len("@example.com")) + "@example.com"
	for _, tc := range []struct {
		name                  string
		email, pwd, full      string
		status                int
		code                  string
		omitEmail, omitPasswd bool
	}{
		{name: "email without @", email: "nobody.example.com", pwd: "password1", full: "N", status: 400, code: "invalid_request"},
		{name: "email over 254", email: "a" + email254, pwd: "password1", full: "N", status: 400, code: "invalid_request"},
		{name: "email of 254", email: email254, pwd: "password1", full: "N", status: 201},
		{name: "email missing", omitEmail: true, pwd: "password1", full: "N", status: 400, code: "invalid_request"},
		{name: "password of 7", email: "p7@example.com", pwd: long(7), full: "N", status: 400, code: "invalid_request"},
		{name: "password of 8", email: "p8@example.com", pwd: long(8), full: "N", status: 201},
		{name: "password of 128", email: "p128@example.com", pwd: long(128), full: "N", status: 201},
		{name: "password of 129", email: "p129@example.com", pwd: long(129), full: "N", status: 400, code: "invalid_request"},
		{name: "password missing", email: "pm@example.com", omitPasswd: true, full: "N", status: 400, code: "invalid_request"},
		{name: "name empty", email: "n0@example.com", pwd: "password1", full: "", status: 400, code: "invalid_request"},
		{name: "name of 1", email: "n1@example.com", pwd: "password1", full: "N", status: 201},
		{name: "name of 100", email: "n100@example.com", pwd: "password1", full: long(100), status: 201},
		{name: "name of 101", email: "n101@example.com", pwd: "password1", full: long(101), status: 400, code: "invalid_request"},
	} {
		req := map[string]string{"name": tc.full}
		if !tc.omitEmail {
			req["email"] = tc.email
		}
		if !tc.omitPasswd {
			req["password"] = tc.pwd
		}
		r := post("/api/v1/signup", req)
		if tc.status == http.StatusCreated {
			var out signupBody
			if r.status != http.StatusCreated || json.Unmarshal(r.body, &out) != nil || out.Token == "" || out.Student.Email != tc.email {
				t.Errorf("signup, %s: %d %s, want 201 with the student and a token", tc.name, r.status, r.body)
			}
			continue
		}
		e2eCheckError(t, "signup, "+tc.name, r, tc.status, tc.code)
	}
	// A refused signup creates nobody.
	var students int
	if err := s.Store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM students`).Scan(&students); err != nil {
		t.Fatal(err)
	}
	if students != 5 {
		t.Errorf("%d students after 5 valid signups among the cases", students)
	}

	// A good signup, then the same email taken again, in any case.
	start := time.Now().Add(-time.Second)
	r := post("/api/v1/signup", map[string]string{"email": "Ada@Example.com", "name": "Ada", "password": "analytical"})
	var su signupBody
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &su) != nil {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	if _, err := uuid.Parse(su.Student.ID); err != nil || su.Student.Name != "Ada" || su.Student.Email != "Ada@Example.com" ||
		su.Student.CreatedAt.Before(start) || su.Student.CreatedAt.Location() != time.UTC || su.Token == "" {
		t.Errorf("signup: %s", r.body)
	}
	for _, email := range []string{"Ada@Example.com", "ada@example.com", "ADA@EXAMPLE.COM"} {
		e2eCheckError(t, "signup with "+email, post("/api/v1/signup", map[string]string{"email": email, "name": "Eve", "password": "password1"}),
			http.StatusConflict, "conflict")
	}

	// Login.
	login := func(email, pwd string) e2eResponse {
		return post("/api/v1/login", map[string]string{"email": email, "password": pwd})
	}
	e2eCheckError(t, "login, wrong password", login("Ada@Example.com", "analytical!"), 401, "unauthorized")
	e2eCheckError(t, "login, unknown email", login("nobody@example.com", "analytical"), 401, "unauthorized")
	e2eCheckError(t, "login, no password", post("/api/v1/login", map[string]string{"email": "Ada@Example.com"}), 400, "invalid_request")
	var tokens []string
	for _, email := range []string{"Ada@Example.com", "ada@example.com"} {
		r := login(email, "analytical")
		var out struct {
			Token string `json:"token"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil || out.Token == "" {
			t.Fatalf("login as %s: %d %s", email, r.status, r.body)
		}
		tokens = append(tokens, out.Token)
	}
	if tokens[0] == tokens[1] || tokens[0] == su.Token {
		t.Errorf("logins issued the same token twice: %q", tokens)
	}

	// GET /user with each token.
	for _, tok := range append([]string{su.Token}, tokens...) {
		r := e2eGet(t, a.URL, tok, "/api/v1/user", nil)
		var st struct {
			ID        string    `json:"id"`
			Email     string    `json:"email"`
			Name      string    `json:"name"`
			CreatedAt time.Time `json:"created_at"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil || st.ID != su.Student.ID ||
			st.Email != su.Student.Email || st.Name != "Ada" || !st.CreatedAt.Equal(su.Student.CreatedAt) {
			t.Errorf("GET /user: %d %s, want %+v", r.status, r.body, su.Student)
		}
	}
	e2eCheckError(t, "GET /user without a token", e2eGet(t, a.URL, "", "/api/v1/user", nil), 401, "unauthorized")

	// Logout revokes the token presented, and only it.
	c := &client{base: a.URL, token: tokens[0], http: httpClient}
	if status, raw, err := c.do("POST", "/api/v1/logout", nil, nil); err != nil || status != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("logout: %d %q %v", status, raw, err)
	}
	e2eCheckError(t, "GET /user after logout", e2eGet(t, a.URL, tokens[0], "/api/v1/user", nil), 401, "unauthorized")
	if status, _, err := c.submit(s.Quizzes[0].ID.String(), "after-logout", answersFor(s.Quizzes[0], 1)); err != nil || status != http.StatusUnauthorized {
		t.Errorf("submit after logout: %d %v", status, err)
	}
	if status, _, _ := c.do("POST", "/api/v1/logout", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("second logout with the revoked token: %d, want 401", status)
	}
	if r := e2eGet(t, a.URL, tokens[1], "/api/v1/user", nil); r.status != http.StatusOK {
		t.Errorf("GET /user with another token of the same student after logout: %d", r.status)
	}
}

func TestReads(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	a := s.startAPI(t, api.Config{})
	s.startWorker(t, worker.Config{})
	clients, _ := e2eSignupMany(t, a.URL, "reads", 2)
	c1, c2 := clients[0], clients[1]
	demo := store.DemoContent(store.DefaultDemo)

	t.Run("content", func(t *testing.T) {
		// checkCached fetches path, checks the caching headers and the 304,
		// and returns the body.
		checkCached := func(path string) []byte {
			t.Helper()
			r := e2eGet(t, a.URL, "", path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, r.status, r.body)
			}
			etag, cc := r.header.Get("ETag"), r.header.Get("Cache-Control")
			if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
				t.Errorf("GET %s: ETag %q, want a strong ETag", path, etag)
			}
			if !strings.HasPrefix(cc, "public") || !strings.Contains(cc, "max-age=") {
				t.Errorf("GET %s: Cache-Control %q", path, cc)
			}
			for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
				nm := e2eGet(t, a.URL, "", path, map[string]string{"If-None-Match": inm})
				if nm.status != http.StatusNotModified || len(nm.body) != 0 {
					t.Errorf("GET %s with If-None-Match %s: %d %q, want 304 with no body", path, inm, nm.status, nm.body)
				}
			}
			if again := e2eGet(t, a.URL, "", path, map[string]string{"If-None-Match": `"stale"`}); again.status != http.StatusOK || !bytes.Equal(again.body, r.body) {
				t.Errorf("GET %s with a stale If-None-Match: %d", path, again.status)
			}
			return r.body
		}

		var list struct {
			Courses []struct {
				ID      string   `json:"id"`
				Slug    string   `json:"slug"`
				Title   string   `json:"title"`
				QuizIDs []string `json:"quiz_ids"`
			} `json:"courses"`
		}
		if err := json.Unmarshal(checkCached("/api/v1/courses"), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Courses) != len(demo) {
			t.Fatalf("%d courses, want %d", len(list.Courses), len(demo))
		}
		for i, c := range list.Courses {
			if c.ID != demo[i].ID.String() || c.Slug != demo[i].Slug || c.Title != demo[i].Title || len(c.QuizIDs) != len(demo[i].Quizzes) {
				t.Errorf("course %d: %+v", i, c)
			}
		}

		course := demo[3]
		var cb struct {
			ID          string   `json:"id"`
			Slug        string   `json:"slug"`
			Description string   `json:"description"`
			QuizIDs     []string `json:"quiz_ids"`
			Quizzes     []struct {
				ID            string `json:"id"`
				Title         string `json:"title"`
				QuestionCount int    `json:"question_count"`
			} `json:"quizzes"`
		}
		if err := json.Unmarshal(checkCached("/api/v1/courses/"+course.ID.String()), &cb); err != nil {
			t.Fatal(err)
		}
		if cb.ID != course.ID.String() || cb.Description != course.Description || len(cb.Quizzes) != len(course.Quizzes) {
			t.Errorf("course: %+v", cb)
		}
		for i, q := range cb.Quizzes {
			if q.ID != course.Quizzes[i].ID.String() || q.Title != course.Quizzes[i].Title || q.QuestionCount != len(course.Quizzes[i].Questions) {
				t.Errorf("course quiz %d: %+v", i, q)
			}
		}

		// A quiz: questions and choices, and nothing that gives the answer away.
		quiz := course.Quizzes[2]
		raw := checkCached("/api/v1/quizzes/" + quiz.ID.String())
		if bytes.Contains(bytes.ToLower(raw), []byte("correct")) {
			t.Errorf("quiz body mentions correctness: %s", raw)
		}
		var qb map[string]any
		if err := json.Unmarshal(raw, &qb); err != nil {
			t.Fatal(err)
		}
		if qb["id"] != quiz.ID.String() || qb["course_id"] != course.ID.String() || qb["title"] != quiz.Title {
			t.Errorf("quiz: %s", raw)
		}
		questions, _ := qb["questions"].([]any)
		if len(questions) != len(quiz.Questions) {
			t.Fatalf("quiz has %d questions, want %d", len(questions), len(quiz.Questions))
		}
		for i, x := range questions {
			qm, _ := x.(map[string]any)
			if !keysAre(qm, "id", "prompt", "choices") || qm["id"] != quiz.Questions[i].ID.String() {
				t.Errorf("question %d: %v, want exactly id, prompt, choices", i, x)
				continue
			}
			choices, _ := qm["choices"].([]any)
			if len(choices) != len(quiz.Questions[i].Choices) {
				t.Errorf("question %d: %d choices", i, len(choices))
			}
			for j, y := range choices {
				cm, _ := y.(map[string]any)
				if !keysAre(cm, "id", "text") || cm["id"] != quiz.Questions[i].Choices[j].ID.String() {
					t.Errorf("question %d choice %d: %v, want exactly id, text", i, j, y)
				}
			}
		}

		for _, path := range []string{
			"/api/v1/courses/" + uuid.NewString(), "/api/v1/courses/course-01", "/api/v1/courses/" + quiz.ID.String(),
			"/api/v1/quizzes/" + uuid.NewString(), "/api/v1/quizzes/quiz-1", "/api/v1/quizzes/" + course.ID.String(),
		} {
			e2eCheckError(t, "GET "+path, e2eGet(t, a.URL, "", path, nil), 404, "not_found")
		}
	})

	// 105 attempts by one student: 30 on quiz A, the rest spread.
	quizA := s.Quizzes[0]
	var (
		mu    sync.Mutex
		mine  []attemptBody
		next  atomic.Int64
		wg    sync.WaitGroup
		total = 105
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				q := quizA
				if i >= 30 {
					q = s.Quizzes[10+i%25]
				}
				status, body, err := c1.submit(q.ID.String(), fmt.Sprintf("r-%03d", i), answersFor(q, i%11))
				if err != nil || status != http.StatusAccepted {
					t.Errorf("submit %d: %d %v", i, status, err)
					return
				}
				mu.Lock()
				mine = append(mine, body)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s.waitDrained(t, 30*time.Second)
	want := newestFirst(mine)

	t.Run("attempts", func(t *testing.T) {
		page := func(c *client, query string) (e2eResponse, e2eAttemptPage) {
			t.Helper()
			r := e2eGet(t, a.URL, c.token, "/api/v1/attempts"+query, nil)
			var p e2eAttemptPage
			if r.status == http.StatusOK {
				if err := json.Unmarshal(r.body, &p); err != nil || p.Attempts == nil {
					t.Fatalf("GET /attempts%s: %s: %v", query, r.body, err)
				}
			}
			return r, p
		}
		checkPage := func(query string, p e2eAttemptPage, from, n int, more bool) {
			t.Helper()
			if got, w := attemptIDs(p.Attempts), attemptIDs(want[from:from+n]); !slices.Equal(got, w) {
				t.Errorf("GET /attempts%s: %d attempts %v, want %d %v", query, len(got), got, len(w), w)
			}
			if (p.NextCursor != nil) != more {
				t.Errorf("GET /attempts%s: next_cursor %v, want one: %t", query, p.NextCursor, more)
			}
		}
		_, p := page(c1, "")
		checkPage(" (default limit)", p, 0, 20, true)
		_, p = page(c1, "?limit=1000")
		checkPage("?limit=1000 (clamped)", p, 0, 100, true)
		_, p = page(c1, "?limit=1000&cursor="+url.QueryEscape(*p.NextCursor))
		checkPage("?limit=1000, second page", p, 100, 5, false)
		_, p = page(c1, "?limit=100")
		checkPage("?limit=100", p, 0, 100, true)
		_, p = page(c1, "?limit=1")
		checkPage("?limit=1", p, 0, 1, true)
		_, p = page(c1, "?limit=105")
		checkPage("?limit=105", p, 0, 100, true)
		if all, err := e2eListAll(c1, url.Values{"limit": {"9"}}, 9); err != nil || !slices.Equal(attemptIDs(all), attemptIDs(want)) {
			t.Errorf("paging by 9: %v, %v", attemptIDs(all), err)
		}
		for _, at := range want {
			if at.Status != "accepted" {
				t.Errorf("202 status %q", at.Status)
			}
		}
		_, p = page(c1, "")
		for _, got := range p.Attempts {
			if got.Status != "recorded" {
				t.Errorf("listed attempt %s status %q after the drain", got.AttemptID, got.Status)
			}
		}

		for _, q := range []string{"0", "-1", "abc", "1.5"} {
			r, _ := page(c1, "?limit="+q)
			e2eCheckError(t, "limit="+q, r, 400, "invalid_request")
		}
		for _, cur := range []string{"garbage!", base64.RawURLEncoding.EncodeToString([]byte("hello")),
			base64.RawURLEncoding.EncodeToString([]byte("12.not-a-uuid")), base64.RawURLEncoding.EncodeToString([]byte("x." + uuid.NewString()))} {
			r, _ := page(c1, "?cursor="+url.QueryEscape(cur))
			e2eCheckError(t, "cursor="+cur, r, 400, "invalid_request")
		}

		var onA []attemptBody
		for _, at := range want {
			if at.QuizID == quizA.ID.String() {
				onA = append(onA, at)
			}
		}
		if len(onA) != 30 {
			t.Fatalf("%d attempts on quiz A, want 30", len(onA))
		}
		if got, err := e2eListAll(c1, url.Values{"quiz_id": {quizA.ID.String()}}, 20); err != nil || !slices.Equal(attemptIDs(got), attemptIDs(onA)) {
			t.Errorf("quiz_id filter: %v, %v; want %v", attemptIDs(got), err, attemptIDs(onA))
		}
		for _, q := range []string{"not-a-uuid", uuid.NewString()} {
			r, p := page(c1, "?quiz_id="+q)
			if r.status != http.StatusOK || len(p.Attempts) != 0 || p.NextCursor != nil {
				t.Errorf("quiz_id=%s: %d %s, want an empty list", q, r.status, r.body)
			}
		}

		// Another student sees none of it.
		r, p := page(c2, "")
		if r.status != http.StatusOK || len(p.Attempts) != 0 || p.NextCursor != nil {
			t.Errorf("another student's list: %d %s", r.status, r.body)
		}
		for _, at := range want[:5] {
			e2eCheckError(t, "another student's attempt", e2eGet(t, a.URL, c2.token, "/api/v1/attempts/"+at.AttemptID, nil), 404, "not_found")
			r := e2eGet(t, a.URL, c1.token, "/api/v1/attempts/"+at.AttemptID, nil)
			var got attemptBody
			if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil || sameAttempt(at, got) != nil || got.Status != "recorded" {
				t.Errorf("own attempt: %d %s, want %+v recorded", r.status, r.body, at)
			}
		}
		for _, id := range []string{uuid.NewString(), "not-a-uuid", "1"} {
			e2eCheckError(t, "attempt "+id, e2eGet(t, a.URL, c1.token, "/api/v1/attempts/"+id, nil), 404, "not_found")
		}
		e2eCheckError(t, "attempts without a token", e2eGet(t, a.URL, "", "/api/v1/attempts", nil), 401, "unauthorized")
		e2eCheckError(t, "an attempt without a token", e2eGet(t, a.URL, "", "/api/v1/attempts/"+want[0].AttemptID, nil), 401, "unauthorized")
	})

	t.Run("progress", func(t *testing.T) {
		quizCourse := quizCourses(s)
		if err := e2eCheckProgress(c1, e2eWantProgress(quizCourse, mine)); err != nil {
			t.Error(err)
		}
		if err := e2eCheckProgress(c2, e2eWantProgress(quizCourse, nil)); err != nil {
			t.Errorf("a student with no attempts: %v", err)
		}
		// The zero shape on the wire: every course, an empty object of scores.
		r := e2eGet(t, a.URL, c2.token, "/api/v1/student-progress", nil)
		var raw struct {
			Courses []map[string]json.RawMessage `json:"courses"`
		}
		if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Courses) != 20 {
			t.Fatalf("progress: %s", r.body)
		}
		for _, c := range raw.Courses {
			if string(c["best_scores"]) != "{}" || string(c["attempts"]) != "0" || string(c["quizzes_attempted"]) != "0" || string(c["quizzes_total"]) != "10" {
				t.Errorf("untouched course: %v", c)
			}
		}
		e2eCheckError(t, "progress without a token", e2eGet(t, a.URL, "", "/api/v1/student-progress", nil), 401, "unauthorized")
	})
}

func keysAre(m map[string]any, keys ...string) bool {
	if len(m) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

func TestEventLogDown(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	a := s.startAPI(t, api.Config{PublishTimeout: time.Second})
	clients, _ := e2eSignupMany(t, a.URL, "down", 1)
	c := clients[0]
	q := s.Quizzes[0]
	if status, _, err := c.submit(q.ID.String(), "before", answersFor(q, 2)); err != nil || status != http.StatusAccepted {
		t.Fatalf("submit while the log is up: %d %v", status, err)
	}
	if r := e2eGet(t, a.URL, "", "/readyz", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz while the log is up: %d %s", r.status, r.body)
	}

	s.NATS.Shutdown()
	s.NATS.WaitForShutdown()

	start := time.Now()
	r, err := e2eDo("POST", a.URL+"/api/v1/quizzes/"+q.ID.String()+"/attempts",
		map[string]string{"Authorization": "Bearer " + c.token, "Content-Type": "application/json", "Idempotency-Key": "during"},
		bytes.NewReader(mustJSON(t, map[string]any{"answers": answersFor(q, 4)})))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	e2eCheckError(t, "submit with the log down", r, http.StatusServiceUnavailable, "unavailable")
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("submit with the log down: Retry-After %q, want whole seconds", r.header.Get("Retry-After"))
	}
	if took > 5*time.Second {
		t.Errorf("the 503 took %s with a 1s publish timeout", took)
	}
	// A retry with the same key while the log is down is still a clear 503.
	status, raw, err := c.do("POST", "/api/v1/quizzes/"+q.ID.String()+"/attempts", map[string]string{"Idempotency-Key": "during"},
		map[string]any{"answers": answersFor(q, 4)})
	if err != nil || status != http.StatusServiceUnavailable {
		t.Errorf("retry with the log down: %d %s %v", status, raw, err)
	}

	ready := e2eGet(t, a.URL, "", "/readyz", nil)
	if ready.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the log down: %d %s, want 503", ready.status, ready.body)
	}
	if n, err := strconv.Atoi(ready.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("/readyz with the log down: Retry-After %q, want whole seconds", ready.header.Get("Retry-After"))
	}
	if !strings.Contains(string(ready.body), "event_log") {
		t.Errorf("/readyz with the log down does not say which dependency is down: %s", ready.body)
	}
	if r := e2eGet(t, a.URL, "", "/livez", nil); r.status != http.StatusOK {
		t.Errorf("/livez with the log down: %d", r.status)
	}
	// Content and bad input do not need the log.
	if r := e2eGet(t, a.URL, "", "/api/v1/courses", nil); r.status != http.StatusOK {
		t.Errorf("GET /courses with the log down: %d", r.status)
	}
	r, err = e2eDo("POST", a.URL+"/api/v1/quizzes/"+uuid.NewString()+"/attempts",
		map[string]string{"Authorization": "Bearer " + c.token, "Content-Type": "application/json"},
		bytes.NewReader(mustJSON(t, map[string]any{"answers": []any{}})))
	if err != nil {
		t.Fatal(err)
	}
	e2eCheckError(t, "unknown quiz with the log down", r, 404, "not_found")
}
