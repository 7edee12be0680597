package api_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

func madeUpToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// A flood of made-up tokens is not a flood of PostgreSQL queries: the same
// bad token is asked about once (the cache of unknown tokens), a logged-out
// one not at all, and an address that keeps making new ones up runs out of
// its budget of lookups and is answered 429 without a query. A real token
// issued here costs nothing of that budget.
func TestUnknownTokensCostNoQueries(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	const budget = 10
	in := s.StartAPI(t, api.Config{TokenMissRate: 0.01, TokenMissBurst: budget})
	st := in.App.Store
	anon := apptest.Client(in.URL)
	user := func(tok string) apptest.Response {
		t.Helper()
		return apptest.Get(t, anon, "/api/v1/user", http.Header{"Authorization": {"Bearer " + tok}})
	}

	// The same three made-up tokens, 50 times each: three queries.
	same := []string{madeUpToken(), madeUpToken(), madeUpToken()}
	before := st.Queries()
	for range 50 {
		for _, tok := range same {
			if r := user(tok); r.Status != http.StatusUnauthorized {
				t.Fatalf("made-up token: %d %s", r.Status, r.Body)
			}
		}
	}
	if n := st.Queries() - before; n != uint64(len(same)) {
		t.Errorf("150 requests with 3 made-up tokens sent %d queries, want 3", n)
	}

	// A token logged out here is refused without a query.
	c := apptest.Signup(t, in.URL, "tokens@example.com")
	tok := c.Token()
	if r := user(tok); r.Status != http.StatusOK {
		t.Fatalf("a fresh token: %d %s", r.Status, r.Body)
	}
	if err := c.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	before = st.Queries()
	for range 20 {
		if r := user(tok); r.Status != http.StatusUnauthorized {
			t.Fatalf("logged-out token: %d %s", r.Status, r.Body)
		}
	}
	if n := st.Queries() - before; n != 0 {
		t.Errorf("20 requests with a logged-out token sent %d queries, want 0", n)
	}

	// New made-up tokens: the rest of the budget is queried, then 429.
	before = st.Queries()
	var unauthorized, limited int
	for range 100 {
		r := user(madeUpToken())
		switch r.Status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
			apptest.CheckError(t, "over the budget of unknown tokens", r, http.StatusTooManyRequests, "rate_limited")
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Fatalf("429 with Retry-After %q", r.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("a made-up token: %d %s", r.Status, r.Body)
		}
	}
	queried := st.Queries() - before
	if want := budget - len(same); unauthorized != want || limited != 100-want || queried != uint64(want) {
		t.Errorf("100 new made-up tokens: %d answered 401 with %d queries, %d answered 429; want %d, %d, %d",
			unauthorized, queried, limited, want, want, 100-want)
	}

	// A login issued here works at once, budget or not.
	token, err := anon.Login(t.Context(), "tokens@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if r := user(token); r.Status != http.StatusOK {
		t.Errorf("a token just issued, with the address's budget spent: %d %s", r.Status, r.Body)
	}
}

// Expired tokens are deleted from PostgreSQL by the periodic purge; live
// ones stay.
func TestExpiredTokensArePurged(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{TokenPurgeInterval: 50 * time.Millisecond})
	c := apptest.Signup(t, in.URL, "purge@example.com")
	me, err := c.User(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		insertToken(t, s, me.ID, time.Now().Add(-time.Duration(i+1)*time.Hour))
	}
	live := insertToken(t, s, me.ID, time.Now().Add(time.Hour))
	count := func(cond string) int {
		return storetest.Int(t, s.DB, `SELECT count(*) FROM tokens WHERE `+cond)
	}
	apptest.WaitFor(t, 10*time.Second, "the expired tokens to be purged", func() bool {
		return count(`expires_at <= now()`) == 0
	})
	if n := count(`expires_at > now()`); n != 2 {
		t.Errorf("%d live tokens left, want 2 (signup's and one more)", n)
	}
	for _, tok := range []string{c.Token(), live} {
		if r := apptest.Get(t, apptest.Client(in.URL), "/api/v1/user", http.Header{"Authorization": {"Bearer " + tok}}); r.Status != http.StatusOK {
			t.Errorf("a live token after the purge: %d %s", r.Status, r.Body)
		}
	}
}
