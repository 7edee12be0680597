package client_test

import (
	"net/http"
	"testing"

	"github.com/quizstream/quizstream/client"
)

func TestLogoutAfterAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	srv, f := newFake(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			hangUp(w) // perhaps after revoking the token
			return
		}
		writeError(w, http.StatusUnauthorized, client.CodeUnauthorized, "")
	})
	if err := newClient(t, srv.URL, client.Options{Token: "tok"}).Logout(t.Context()); err != nil {
		t.Fatalf("logout whose retry found the token revoked: %v", err)
	}
	if n := len(f.all()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}
