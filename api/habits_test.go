package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// Content is gzipped when the client accepts it: the same JSON, with
// Content-Encoding, its own length, its own strong ETag (RFC 9110 8.8.3:
// another representation), and Vary: Accept-Encoding on both variants; a
// conditional GET matches the variant it would get, and only that one.
func TestContentGzip(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	c := apptest.Client(in.URL)
	for _, path := range []string{"/api/v1/courses", "/api/v1/quizzes/" + s.Quizzes[0].ID.String()} {
		plain := apptest.Get(t, c, path, http.Header{"Accept-Encoding": {"identity"}})
		zipped := apptest.Get(t, c, path, http.Header{"Accept-Encoding": {"br;q=1.0, gzip;q=0.8"}})
		refused := apptest.Get(t, c, path, http.Header{"Accept-Encoding": {"*, gzip;q=0"}})
		if plain.Status != http.StatusOK || zipped.Status != http.StatusOK {
			t.Fatalf("%s: %d, %d", path, plain.Status, zipped.Status)
		}
		if plain.Header.Get("Content-Encoding") != "" || refused.Header.Get("Content-Encoding") != "" || zipped.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: Content-Encoding %q (identity), %q (gzip;q=0), %q (gzip)", path,
				plain.Header.Get("Content-Encoding"), refused.Header.Get("Content-Encoding"), zipped.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped.Body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, plain.Body) || len(zipped.Body) >= len(plain.Body) {
			t.Errorf("%s: gzip body of %d bytes unzips to %d bytes (%v), want the %d of the identity", path, len(zipped.Body), len(unzipped), err, len(plain.Body))
		}
		if zipped.Header.Get("Content-Length") != strconv.Itoa(len(zipped.Body)) {
			t.Errorf("%s: Content-Length %q for %d gzip bytes", path, zipped.Header.Get("Content-Length"), len(zipped.Body))
		}
		pTag, zTag := plain.Header.Get("ETag"), zipped.Header.Get("ETag")
		if pTag == "" || zTag == "" || pTag == zTag || refused.Header.Get("ETag") != pTag {
			t.Errorf("%s: ETags %q (identity), %q (gzip), %q (gzip;q=0): want two different ones", path, pTag, zTag, refused.Header.Get("ETag"))
		}
		for _, r := range []apptest.Response{plain, zipped} {
			if r.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: Vary %q, want Accept-Encoding", path, r.Header.Get("Vary"))
			}
		}
		for _, tc := range []struct {
			enc, tag string
			want     int
		}{
			{"gzip", zTag, http.StatusNotModified}, {"identity", pTag, http.StatusNotModified},
			{"gzip", pTag, http.StatusOK}, {"identity", zTag, http.StatusOK},
		} {
			r := apptest.Get(t, c, path, http.Header{"Accept-Encoding": {tc.enc}, "If-None-Match": {tc.tag}})
			if r.Status != tc.want {
				t.Errorf("%s: If-None-Match %s with Accept-Encoding %s: %d, want %d", path, tc.tag, tc.enc, r.Status, tc.want)
			}
		}
	}
}

// Every answer that carries a token or a student's data says no-store;
// content says public.
func TestNoStore(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	anon := apptest.Client(in.URL)
	signup := apptest.PostJSON(t, anon, "/api/v1/signup", nil, map[string]string{"email": "nostore@example.com", "name": "N", "password": "correct horse"})
	login := apptest.PostJSON(t, anon, "/api/v1/login", nil, map[string]string{"email": "nostore@example.com", "password": "correct horse"})
	var tok struct{ Token string }
	json.Unmarshal(login.Body, &tok)
	c := apptest.Client(in.URL).WithToken(tok.Token)
	q := s.Quizzes[0]
	submit := apptest.PostJSON(t, c, "/api/v1/quizzes/"+q.ID.String()+"/attempts", nil, map[string]any{"answers": apptest.AnswersFor(q, 1)})
	for name, r := range map[string]apptest.Response{
		"signup": signup, "login": login, "attempt POST": submit,
		"user":     apptest.Get(t, c, "/api/v1/user", nil),
		"attempts": apptest.Get(t, c, "/api/v1/attempts", nil),
		"progress": apptest.Get(t, c, "/api/v1/student-progress", nil),
		"sessions": apptest.Get(t, c, "/api/v1/sessions", nil),
	} {
		if r.Status >= 500 || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d, Cache-Control %q, want no-store", name, r.Status, r.Header.Get("Cache-Control"))
		}
	}
	if r := apptest.Get(t, anon, "/api/v1/courses", nil); !strings.HasPrefix(r.Header.Get("Cache-Control"), "public, max-age=") {
		t.Errorf("courses: Cache-Control %q, want public", r.Header.Get("Cache-Control"))
	}
}

// syncBuffer is a log sink goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// The access log writes one line a request, at its level, with the
// route, status and duration and never a header; sampling and the level
// turn it down or off.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	for _, tc := range []struct {
		name   string
		level  slog.Leveler
		sample float64
		want   int // lines of 20 requests
	}{
		{"info, every request", slog.LevelInfo, 0, 20},
		{"debug, under an info logger", nil, 0, 0},
		{"off", api.AccessLogOff, 1, 0},
		{"none sampled", slog.LevelWarn, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			cfg := s.Config(t)
			cfg.API = true
			cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg.APIConfig.AccessLogLevel, cfg.APIConfig.AccessLogSample = tc.level, tc.sample
			in := s.Start(t, cfg)
			c := apptest.Client(in.URL)
			for i := range 20 {
				path := "/api/v1/courses"
				if i%2 == 1 {
					path = "/api/v1/user"
				}
				apptest.Get(t, c, path, http.Header{"Authorization": {"Bearer secret-looking-token"}})
			}
			in.Stop()
			lines := buf.lines("api: request")
			if len(lines) != tc.want {
				t.Fatalf("%d access log lines, want %d", len(lines), tc.want)
			}
			for _, l := range lines {
				if l["level"] != tc.level.Level().String() || l["method"] != "GET" || l["duration"] == nil ||
					(l["route"] != "/api/v1/courses" || l["status"] != 200.0) && (l["route"] != "/api/v1/user" || l["status"] != 401.0) {
					t.Errorf("access log line %v", l)
				}
			}
			if bytes.Contains(buf.b.Bytes(), []byte("secret-looking-token")) {
				t.Error("the log holds the token")
			}
		})
	}
}
