package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
)

// Handler tests: each runs an API instance through the binary's wiring
// (apptest) on a private PostgreSQL database and JetStream server, and
// speaks to it through the typed client, or through its raw Do where a
// test checks the wire itself: exact statuses, headers and bytes, and
// requests the typed methods would never send.

// response is a raw answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request through c's raw Do (body nil for none) and fails t
// on a transport error.
func do(t testing.TB, c *client.Client, method, path string, header http.Header, body io.Reader) response {
	t.Helper()
	status, h, b, err := c.Do(t.Context(), method, path, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return response{status: status, header: h, body: b}
}

// get sends a GET through c's raw Do.
func get(t testing.TB, c *client.Client, path string, header http.Header) response {
	t.Helper()
	return do(t, c, http.MethodGet, path, header, nil)
}

// postJSON sends v as a JSON body through c's raw Do.
func postJSON(t testing.TB, c *client.Client, path string, header http.Header, v any) response {
	t.Helper()
	return do(t, c, http.MethodPost, path, header, bytes.NewReader(mustJSON(t, v)))
}

// checkError fails t unless r is the HTTP contract's error body with this status
// and code.
func checkError(t testing.TB, what string, r response, status int, code string) {
	t.Helper()
	if err := apptest.ErrorShape(r.status, r.header, r.body, status, code); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// expect fails t unless call (a typed method of a client made by apptest)
// was answered once, with status want; see apptest.Expect.
func expect(t testing.TB, what string, want int, call func(ctx context.Context) error) {
	t.Helper()
	if err := apptest.Expect(t.Context(), want, call); err != nil {
		t.Errorf("%s: %v", what, err)
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

// keysAre reports whether m has exactly these keys.
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

// noContentType is a transport that sends requests without a
// Content-Type, which (*client.Client).Do adds to every request with a
// body: for the one malformed request it cannot send otherwise.
type noContentType struct{ next http.RoundTripper }

func (n noContentType) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Del("Content-Type")
	return n.next.RoundTrip(req)
}
