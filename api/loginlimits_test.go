package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/streams"
)

// Second and further client addresses: every address of 127.0.0.0/8 is
// the loopback interface on Linux, and the API listens on 127.0.0.1.
func from(last byte) net.IP { return net.IPv4(127, 0, 0, last) }

// login sends one login from c and returns the raw answer.
func login(t testing.TB, c *client.Client, email, password string) apptest.Response {
	t.Helper()
	return apptest.PostJSON(t, c, "/api/v1/login", nil, map[string]string{"email": email, "password": password})
}

// Failed logins are throttled per (account, address) and per account, and
// a flood against one account from one address cannot lock its owner out:
// the owner logs in from another address, even once the account's own
// budget is spent, while the flooding address is refused even the right
// password (its guessing is slowed, not told when it guessed right).
func TestLoginFailuresPerAccountAndAddress(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{
		PairFailureRate: 0.001, PairFailureBurst: 3,
		AccountFailureRate: 0.001, AccountFailureBurst: 5,
		HashWait: time.Minute, // the package's other tests hash at the same time
	})
	const victim, other, right = "victim@example.com", "other@example.com", "correct horse"
	apptest.Signup(t, in.URL, victim)
	apptest.Signup(t, in.URL, other)
	a := apptest.ClientFrom(in.URL, from(1))

	// A floods the victim's account: 3 failures, then 429 whatever the
	// password, with the wait in Retry-After.
	for i := range 3 {
		if r := login(t, a, victim, fmt.Sprint("wrong ", i)); r.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d from A: %d %s, want 401", i, r.Status, r.Body)
		}
	}
	for _, pw := range []string{"wrong again", right, "WRONG"} {
		r := login(t, a, " VICTIM@example.com", pw) // the same account, as the store compares emails
		apptest.CheckError(t, "A past its budget on the account", r, http.StatusTooManyRequests, "rate_limited")
		if n := retryAfter(t, "A past its budget", r); n < 60 {
			t.Errorf("Retry-After %ds at 0.001/s; want the bucket's wait", n)
		}
	}
	// The owner, from B, is not locked out; A still logs into another account.
	apptest.ExpectStatus(t, "the owner from B", http.StatusOK, func(ctx context.Context) error {
		_, err := apptest.ClientFrom(in.URL, from(2)).Login(ctx, victim, right)
		return err
	})
	if r := login(t, a, other, right); r.Status != http.StatusOK {
		t.Errorf("A into another account: %d %s, want 200", r.Status, r.Body)
	}

	// The account's budget (5) runs out with 2 more failures from C and D:
	// then an address that failed on it lately (C) is refused before its
	// own pair budget is spent, and one that has not (E) still gets in.
	for _, last := range []byte{3, 4} {
		if r := login(t, apptest.ClientFrom(in.URL, from(last)), victim, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("a failure from 127.0.0.%d: %d %s", last, r.Status, r.Body)
		}
	}
	apptest.CheckError(t, "C, once the account's budget is spent", login(t, apptest.ClientFrom(in.URL, from(3)), victim, right), http.StatusTooManyRequests, "rate_limited")
	if r := login(t, apptest.ClientFrom(in.URL, from(5)), victim, right); r.Status != http.StatusOK {
		t.Errorf("the owner from a fresh address while the account's budget is spent: %d %s, want 200", r.Status, r.Body)
	}
	for limit, want := range map[string]float64{"login_account_address": 3, "login_account": 1, "login_address": 0} {
		if n := counter(t, in, "quizstream_api_refused_total", "limit", limit); n != want {
			t.Errorf("refused{limit=%s} = %v, want %v", limit, n, want)
		}
	}
}

// The per-address budget of logins counts failures only: a hall logging in
// from one address spends none of it, and once failures over every
// account spend it (credential stuffing), the address is refused.
func TestLoginFailuresPerAddress(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{LoginFailureRate: 0.001, LoginFailureBurst: 3, HashWait: time.Minute})
	hall := apptest.ClientFrom(in.URL, from(7))
	_, _ = apptest.SignupMany(t, in.URL, "hall", 4)
	for round := range 3 { // 12 successful logins, 4 times the budget
		for i := range 4 {
			if r := login(t, hall, fmt.Sprintf("hall-%02d@example.com", i), "correct horse"); r.Status != http.StatusOK {
				t.Fatalf("login %d.%d: %d %s", round, i, r.Status, r.Body)
			}
		}
	}
	for i := range 3 { // one failure on each of three accounts
		if r := login(t, hall, fmt.Sprintf("stuffed-%d@example.com", i), "guess"); r.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := login(t, hall, "hall-00@example.com", "correct horse")
	apptest.CheckError(t, "a login from the address past its failures", r, http.StatusTooManyRequests, "rate_limited")
	retryAfter(t, "past the address's failures", r)
	r = apptest.Do(t, hall, http.MethodPost, "/api/v1/login", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(`{"email":`))
	apptest.CheckError(t, "a malformed login from the address (429 comes before 400)", r, http.StatusTooManyRequests, "rate_limited")
	if r := login(t, apptest.ClientFrom(in.URL, from(8)), "hall-00@example.com", "correct horse"); r.Status != http.StatusOK {
		t.Errorf("another address: %d %s, want 200", r.Status, r.Body)
	}
	if n := counter(t, in, "quizstream_api_refused_total", "limit", "login_address"); n != 2 {
		t.Errorf("refused{limit=login_address} = %v, want 2", n)
	}
}
