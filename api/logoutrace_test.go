package api

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

// A logout cannot be undone by a request in flight: a request that read
// the token's session from PostgreSQL before the logout deleted it, and
// would cache it after the logout ran, caches nothing, and the token is
// refused from then on (with an hour of cache TTL, a stale entry would
// let it in for an hour). The interleaving is forced with the server's
// hook between the lookup and the cache insert.
func TestLogoutWhileTheTokenIsLookedUp(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	ns := eventstest.NewServer(t)
	_, js := eventstest.Connect(t, ns)
	lg, err := eventlog.NewLog(t.Context(), js, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(t.Context(), Config{
		Store: st, Events: lg, Logger: slog.New(slog.DiscardHandler), ContentReload: -1, TokenCacheTTL: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	serve := func(method, path, tok string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	body, _ := json.Marshal(map[string]string{"email": "race@example.com", "name": "Race", "password": "correct horse"})
	if rec := serve("POST", "/api/v1/signup", "", body); rec.Code != http.StatusCreated {
		t.Fatalf("signup: %d %s", rec.Code, rec.Body)
	}
	stu, _, err := st.StudentByEmail(t.Context(), "race@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// A token this instance never saw (login here would cache it).
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := base64.RawURLEncoding.EncodeToString(raw)
	if err := st.CreateToken(t.Context(), tokenHash(tok), stu.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// The first lookup stops after PostgreSQL answered, until released.
	reached, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	srv.tokenLookedUp = func() {
		if first.CompareAndSwap(false, true) {
			close(reached)
			<-release
		}
	}
	inFlight := make(chan *httptest.ResponseRecorder, 1)
	go func() { inFlight <- serve("GET", "/api/v1/user", tok, nil) }()
	<-reached
	if rec := serve("POST", "/api/v1/logout", tok, nil); rec.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
	close(release)
	if rec := <-inFlight; rec.Code != http.StatusOK && rec.Code != http.StatusUnauthorized {
		t.Fatalf("the request in flight: %d %s", rec.Code, rec.Body)
	}
	if _, err := st.SessionByToken(t.Context(), tokenHash(tok)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the token is still in the database: %v", err)
	}
	for i := range 3 {
		if rec := serve("GET", "/api/v1/user", tok, nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("request %d after the logout: %d %s; want 401", i, rec.Code, rec.Body)
		}
	}
}

// The client address is the peer's, or the nearest address of
// X-Forwarded-For that is not a trusted proxy; an IPv6 client is keyed by
// its /64.
func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []string
		peer    string
		xff     string
		want    string
	}{
		{"no proxies: the header is ignored", nil, "198.51.100.1:4000", "203.0.113.9", "198.51.100.1"},
		{"loopback is not trusted by default", nil, "127.0.0.1:4000", "203.0.113.9", "127.0.0.1"},
		{"a trusted proxy", []string{"10.0.0.0/8"}, "10.1.2.3:4000", "203.0.113.9", "203.0.113.9"},
		{"a prepended address does not count", []string{"10.0.0.0/8"}, "10.1.2.3:4000", "192.0.2.1, 203.0.113.9", "203.0.113.9"},
		{"a chain of trusted proxies", []string{"10.0.0.0/8", "192.168.1.1"}, "10.1.2.3:4000", "203.0.113.9, 192.168.1.1", "203.0.113.9"},
		{"a peer that is no trusted proxy", []string{"10.0.0.0/8"}, "198.51.100.1:4000", "203.0.113.9", "198.51.100.1"},
		{"IPv6 by its /64", nil, "[2001:db8:1:2:3:4:5:6]:4000", "", "2001:db8:1:2::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := echo.New()
			e.IPExtractor = ipExtractor(tc.proxies)
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.peer
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientKey(e.NewContext(req, httptest.NewRecorder())); got != tc.want {
				t.Errorf("client key %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := trustedRanges([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR range was accepted")
	}
}
