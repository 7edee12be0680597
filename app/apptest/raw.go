package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/quizstream/quizstream/client"
)

// Response is a raw answer of the API: what a test of the wire itself
// checks (exact statuses, headers and bytes).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends one request through c's raw Do (body nil for none) and fails t
// on a transport error.
func Do(t testing.TB, c *client.Client, method, path string, header http.Header, body io.Reader) Response {
	t.Helper()
	status, h, b, err := c.Do(t.Context(), method, path, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return Response{Status: status, Header: h, Body: b}
}

// Get sends a GET through c's raw Do.
func Get(t testing.TB, c *client.Client, path string, header http.Header) Response {
	t.Helper()
	return Do(t, c, http.MethodGet, path, header, nil)
}

// PostJSON sends v as a JSON body through c's raw Do.
func PostJSON(t testing.TB, c *client.Client, path string, header http.Header, v any) Response {
	t.Helper()
	return Do(t, c, http.MethodPost, path, header, bytes.NewReader(MustJSON(t, v)))
}

// MustJSON is v encoded, or t failed.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CheckError fails t unless r is the HTTP contract's error body with this
// status and code.
func CheckError(t testing.TB, what string, r Response, status int, code string) {
	t.Helper()
	if err := ErrorShape(r.Status, r.Header, r.Body, status, code); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// ExpectStatus fails t unless call (a typed method of a client made by
// apptest) was answered once, with status want (Expect).
func ExpectStatus(t testing.TB, what string, want int, call func(ctx context.Context) error) {
	t.Helper()
	if err := Expect(t.Context(), want, call); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}
