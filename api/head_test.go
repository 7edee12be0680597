package api_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// Every GET route answers HEAD (RFC 9110), read from the router itself so
// that a new GET route without HEAD fails; HEAD answers GET's status and
// headers with no body, and precomputed bodies carry their length.
func TestEveryGetAnswersHead(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	routes := map[string]map[string]bool{}
	for _, r := range in.API.Handler().(*echo.Echo).Routes() {
		if routes[r.Path] == nil {
			routes[r.Path] = map[string]bool{}
		}
		routes[r.Path][r.Method] = true
	}
	for path, methods := range routes {
		if methods[http.MethodGet] && !methods[http.MethodHead] {
			t.Errorf("GET %s has no HEAD route", path)
		}
	}

	c := apptest.Signup(t, in.URL, "head@example.com")
	quiz := s.Quizzes[0]
	for _, path := range []string{
		"/livez", "/readyz", "/api/v1/courses", "/api/v1/courses/" + quiz.CourseID.String(),
		"/api/v1/quizzes/" + quiz.ID.String(), "/api/v1/user", "/api/v1/attempts",
		"/api/v1/student-progress", "/api/v1/attempts/" + quiz.ID.String(), "/api/v1/nothing-here",
	} {
		// The same Accept-Encoding for both: Go's transport asks GETs, not
		// HEADs, for gzip by itself, and content varies on it.
		for _, enc := range []string{"identity", "gzip"} {
			h := http.Header{"Accept-Encoding": {enc}}
			gs, gh, gb, err := c.Do(t.Context(), http.MethodGet, path, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			hs, hh, hb, err := c.Do(t.Context(), http.MethodHead, path, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			if hs != gs || len(hb) != 0 || hh.Get("Content-Type") != gh.Get("Content-Type") || hh.Get("ETag") != gh.Get("ETag") ||
				hh.Get("Content-Encoding") != gh.Get("Content-Encoding") || hh.Get("Cache-Control") != gh.Get("Cache-Control") {
				t.Errorf("%s, %s: HEAD %d %v (%d body bytes), GET %d %v", path, enc, hs, hh, len(hb), gs, gh)
			}
			if gh.Get("ETag") != "" && (gh.Get("Content-Length") != strconv.Itoa(len(gb)) || hh.Get("Content-Length") != gh.Get("Content-Length")) {
				t.Errorf("%s, %s: Content-Length %q (HEAD %q) for a body of %d bytes", path, enc, gh.Get("Content-Length"), hh.Get("Content-Length"), len(gb))
			}
		}
	}
}
