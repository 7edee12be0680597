package api_test

import (
	"net/http"
)

// Handler tests: each runs an API instance through the binary's wiring
// (apptest) on a private PostgreSQL database and JetStream server, and
// speaks to it through the typed client, or through its raw Do where a
// test checks the wire itself: exact statuses, headers and bytes, and
// requests the typed methods would never send.

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
