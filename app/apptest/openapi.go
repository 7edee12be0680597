package apptest

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/quizstream/quizstream/api/openapitest"
)

// Every client made by Client checks each of its exchanges against the
// API's OpenAPI document (api/openapitest), and a disagreement fails the
// test that started the API it spoke to (Start, SpawnAPI): a status, a
// header or a field the document does not name, or a request the document
// refuses that the server accepted. An exchange with an address no test
// registered (a proxy in front of an instance) is not checked.

var (
	specOnce      sync.Once
	specValidator *openapitest.Validator
	specErr       error

	watchedMu sync.RWMutex
	watched   = map[string][]testing.TB{} // by host:port; the last registered wins
)

// Validating returns a transport that sends through next and checks each
// exchange against the document as the clients made by Client do, for a
// test that needs a transport of its own. It panics when the document
// does not load.
func Validating(next http.RoundTripper) http.RoundTripper { return validating(next) }

// validating wraps next in the document's checks.
func validating(next http.RoundTripper) http.RoundTripper {
	specOnce.Do(func() { specValidator, specErr = openapitest.New(context.Background()) })
	if specErr != nil {
		panic("apptest: " + specErr.Error()) // TestDocumentLoadsAndValidates says more
	}
	return specValidator.Transport(next, reportViolation)
}

// reportViolation fails the test that registered the request's host.
func reportViolation(req *http.Request, err error) {
	watchedMu.RLock()
	defer watchedMu.RUnlock() // held while reporting: unwatch waits for it
	if ts := watched[req.URL.Host]; len(ts) > 0 {
		t := ts[len(ts)-1]
		t.Errorf("apptest: the API disagrees with api/openapi.yaml: %v", err)
	}
}

// watch makes the exchanges with the API at base fail t when they
// disagree with the document, until t ends.
func watch(t testing.TB, base string) {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("apptest: %v", err)
	}
	watchedMu.Lock()
	watched[u.Host] = append(watched[u.Host], t)
	watchedMu.Unlock()
	t.Cleanup(func() {
		watchedMu.Lock()
		defer watchedMu.Unlock()
		ts := watched[u.Host]
		if i := slices.Index(ts, t); i >= 0 {
			ts = slices.Delete(ts, i, i+1)
		}
		if len(ts) == 0 {
			delete(watched, u.Host)
		} else {
			watched[u.Host] = ts
		}
	})
}
