package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// Content is cacheable and gives no answer away; a student's attempts
// page newest first, filter by quiz and are theirs alone; progress counts
// them, with every course listed.
func TestReads(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	clients, _ := apptest.SignupMany(t, a.URL, "reads", 2)
	c1, c2 := clients[0], clients[1]
	anon := apptest.Client(a.URL)
	demo := store.DemoContent(store.DefaultDemo)

	t.Run("content", func(t *testing.T) {
		// checkCached fetches path, checks the caching headers and the 304,
		// and returns the body.
		checkCached := func(path string) []byte {
			t.Helper()
			r := apptest.Get(t, anon, path, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
			}
			etag, cc := r.Header.Get("ETag"), r.Header.Get("Cache-Control")
			if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
				t.Errorf("GET %s: ETag %q, want a strong ETag", path, etag)
			}
			if !strings.HasPrefix(cc, "public") || !strings.Contains(cc, "max-age=") {
				t.Errorf("GET %s: Cache-Control %q", path, cc)
			}
			for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
				nm := apptest.Get(t, anon, path, http.Header{"If-None-Match": {inm}})
				if nm.Status != http.StatusNotModified || len(nm.Body) != 0 {
					t.Errorf("GET %s with If-None-Match %s: %d %q, want 304 with no body", path, inm, nm.Status, nm.Body)
				}
			}
			if again := apptest.Get(t, anon, path, http.Header{"If-None-Match": {`"stale"`}}); again.Status != http.StatusOK || !bytes.Equal(again.Body, r.Body) {
				t.Errorf("GET %s with a stale If-None-Match: %d", path, again.Status)
			}
			return r.Body
		}

		var list struct {
			Courses []client.CourseSummary `json:"courses"`
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
		var cb client.Course
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
			apptest.CheckError(t, "GET "+path, apptest.Get(t, anon, path, nil), 404, "not_found")
		}
	})

	// 105 attempts by one student: 30 on quiz A, the rest spread.
	quizA := s.Quizzes[0]
	var (
		mu    sync.Mutex
		mine  []client.Attempt
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
				got, err := apptest.Submit(t.Context(), c1, q.ID.String(), fmt.Sprintf("r-%03d", i), apptest.AnswersFor(q, i%11))
				if err != nil {
					t.Errorf("submit %d: %v", i, err)
					return
				}
				mu.Lock()
				mine = append(mine, got)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s.WaitDrained(t, 30*time.Second)
	want := apptest.NewestFirst(mine)

	t.Run("attempts", func(t *testing.T) {
		// page reads the wire itself: next_cursor is null on the last page.
		type attemptPage struct {
			Attempts   []client.Attempt `json:"attempts"`
			NextCursor *string          `json:"next_cursor"`
		}
		page := func(c *client.Client, query string) (apptest.Response, attemptPage) {
			t.Helper()
			r := apptest.Get(t, c, "/api/v1/attempts"+query, nil)
			var p attemptPage
			if r.Status == http.StatusOK {
				if err := json.Unmarshal(r.Body, &p); err != nil || p.Attempts == nil {
					t.Fatalf("GET /attempts%s: %s: %v", query, r.Body, err)
				}
			}
			return r, p
		}
		checkPage := func(query string, p attemptPage, from, n int, more bool) {
			t.Helper()
			if got, w := apptest.AttemptIDs(p.Attempts), apptest.AttemptIDs(want[from:from+n]); !slices.Equal(got, w) {
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
		if all, err := apptest.ListAttempts(t.Context(), c1, client.AttemptsQuery{Limit: 9}); err != nil || !slices.Equal(apptest.AttemptIDs(all), apptest.AttemptIDs(want)) {
			t.Errorf("paging by 9: %v, %v", apptest.AttemptIDs(all), err)
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
			apptest.CheckError(t, "limit="+q, r, 400, "invalid_request")
		}
		for _, cur := range []string{"garbage!", base64.RawURLEncoding.EncodeToString([]byte("hello")),
			base64.RawURLEncoding.EncodeToString([]byte("12.not-a-uuid")), base64.RawURLEncoding.EncodeToString([]byte("x." + uuid.NewString()))} {
			r, _ := page(c1, "?cursor="+url.QueryEscape(cur))
			apptest.CheckError(t, "cursor="+cur, r, 400, "invalid_request")
		}

		var onA []client.Attempt
		for _, at := range want {
			if at.QuizID == quizA.ID.String() {
				onA = append(onA, at)
			}
		}
		if len(onA) != 30 {
			t.Fatalf("%d attempts on quiz A, want 30", len(onA))
		}
		if got, err := apptest.ListAttempts(t.Context(), c1, client.AttemptsQuery{QuizID: quizA.ID.String()}); err != nil || !slices.Equal(apptest.AttemptIDs(got), apptest.AttemptIDs(onA)) {
			t.Errorf("quiz_id filter: %v, %v; want %v", apptest.AttemptIDs(got), err, apptest.AttemptIDs(onA))
		}
		for _, q := range []string{"not-a-uuid", uuid.NewString()} {
			r, p := page(c1, "?quiz_id="+q)
			if r.Status != http.StatusOK || len(p.Attempts) != 0 || p.NextCursor != nil {
				t.Errorf("quiz_id=%s: %d %s, want an empty list", q, r.Status, r.Body)
			}
		}

		// Another student sees none of it.
		r, p := page(c2, "")
		if r.Status != http.StatusOK || len(p.Attempts) != 0 || p.NextCursor != nil {
			t.Errorf("another student's list: %d %s", r.Status, r.Body)
		}
		for _, at := range want[:5] {
			apptest.CheckError(t, "another student's attempt", apptest.Get(t, c2, "/api/v1/attempts/"+at.AttemptID, nil), 404, "not_found")
			var got client.Attempt
			err := apptest.Expect(t.Context(), http.StatusOK, func(ctx context.Context) (err error) {
				got, err = c1.Attempt(ctx, at.AttemptID)
				return err
			})
			if err != nil || apptest.SameAttempt(at, got) != nil || got.Status != "recorded" {
				t.Errorf("own attempt: %+v %v, want %+v recorded", got, err, at)
			}
		}
		for _, id := range []string{uuid.NewString(), "not-a-uuid", "1"} {
			apptest.CheckError(t, "attempt "+id, apptest.Get(t, c1, "/api/v1/attempts/"+id, nil), 404, "not_found")
		}
		apptest.CheckError(t, "attempts without a token", apptest.Get(t, anon, "/api/v1/attempts", nil), 401, "unauthorized")
		apptest.CheckError(t, "an attempt without a token", apptest.Get(t, anon, "/api/v1/attempts/"+want[0].AttemptID, nil), 401, "unauthorized")
	})

	t.Run("progress", func(t *testing.T) {
		if err := apptest.CheckProgress(t.Context(), c1, apptest.WantProgress(mine)); err != nil {
			t.Error(err)
		}
		if err := apptest.CheckProgress(t.Context(), c2, apptest.WantProgress(nil)); err != nil {
			t.Errorf("a student with no attempts: %v", err)
		}
		// The zero shape on the wire: every course, an empty object of scores.
		r := apptest.Get(t, c2, "/api/v1/student-progress", nil)
		var raw struct {
			Courses []map[string]json.RawMessage `json:"courses"`
		}
		if err := json.Unmarshal(r.Body, &raw); err != nil || len(raw.Courses) != 20 {
			t.Fatalf("progress: %s", r.Body)
		}
		for i, c := range raw.Courses {
			if string(c["best_scores"]) != "{}" || string(c["attempts"]) != "0" || string(c["quizzes_attempted"]) != "0" ||
				string(c["quizzes_total"]) != fmt.Sprint(len(demo[i].Quizzes)) { // the last course holds the timed quizzes too
				t.Errorf("untouched course: %v", c)
			}
		}
		apptest.CheckError(t, "progress without a token", apptest.Get(t, anon, "/api/v1/student-progress", nil), 401, "unauthorized")
	})
}
