package api_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// dialFrom opens a connection to the instance from the local address ip;
// it is closed when t ends.
func dialFrom(t testing.TB, in *apptest.Instance, ip net.IP) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	c, err := d.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// ask sends a keep-alive request on c and returns the answer.
func ask(t testing.TB, c net.Conn) apptest.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return apptest.Response{} // closed by the server: read what it said
	}
	return readResponse(t, c)
}

// One client address cannot take the listener's slots from the others: it
// may hold at most MaxPendingPerAddress connections that have not been
// answered (a slowloris's) and MaxConnsPerAddress in all; one more is
// answered 503 with Retry-After and closed, while another address is
// served. A trusted proxy's connections are not capped per address.
func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{MaxConnections: 12, MaxConnsPerAddress: 6, MaxPendingPerAddress: 3})
	other := apptest.ClientFrom(in.URL, from(2))
	served := func(what string) {
		t.Helper()
		if r := apptest.Get(t, other, "/livez", nil); r.Status != http.StatusOK {
			t.Errorf("another address while %s: %d %s", what, r.Status, r.Body)
		}
	}
	a := from(1)

	// Three connections that send nothing: the fourth is refused.
	var held []net.Conn
	for range 3 {
		held = append(held, dialFrom(t, in, a))
	}
	r := readResponse(t, dialFrom(t, in, a))
	apptest.CheckError(t, "a fourth connection not yet answered", r, http.StatusServiceUnavailable, "unavailable")
	retryAfter(t, "a fourth pending connection", r)
	served("A holds its pending connections")

	// Answered, they are no longer pending: A may open more, up to 6 in all.
	for _, c := range held {
		if r := ask(t, c); r.Status != http.StatusOK {
			t.Fatalf("a request on a held connection: %d %s", r.Status, r.Body)
		}
	}
	apptest.WaitFor(t, 10*time.Second, "A's answered connections to count as not pending", func() bool {
		c := dialFrom(t, in, a)
		if ask(t, c).Status != http.StatusOK {
			c.Close()
			return false
		}
		held = append(held, c)
		return true
	})
	for len(held) < 6 {
		c := dialFrom(t, in, a)
		if r := ask(t, c); r.Status != http.StatusOK {
			t.Fatalf("connection %d of A: %d %s", len(held)+1, r.Status, r.Body)
		}
		held = append(held, c)
	}
	r = readResponse(t, dialFrom(t, in, a))
	apptest.CheckError(t, "a seventh connection of A", r, http.StatusServiceUnavailable, "unavailable")
	served("A holds all its connections")
	for _, limit := range []string{"address_pending", "address_connections"} {
		if n := counter(t, in, "quizstream_api_refused_total", "limit", limit); n < 1 {
			t.Errorf("refused{limit=%s} = %v, want at least 1", limit, n)
		}
	}

	// Behind a trusted proxy every client shares the proxy's connections.
	proxied := s.StartAPI(t, api.Config{MaxPendingPerAddress: 1, MaxConnsPerAddress: 1, TrustedProxies: []string{"127.0.0.1"}})
	dialFrom(t, proxied, a)
	dialFrom(t, proxied, a)
	if r := ask(t, dialFrom(t, proxied, a)); r.Status != http.StatusOK {
		t.Errorf("a third connection from a trusted proxy: %d %s", r.Status, r.Body)
	}
}
