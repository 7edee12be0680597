package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/client"
)

func TestErrorDecoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		respond     func(w http.ResponseWriter)
		want        client.Error
		minRA, maxR time.Duration
	}{
		{"api shape", respondError(409, client.CodeConflict),
			client.Error{Status: 409, Code: client.CodeConflict, Message: "message of conflict"}, 0, 0},
		{"retry after seconds", func(w http.ResponseWriter) { writeError(w, 503, client.CodeUnavailable, "2") },
			client.Error{Status: 503, Code: client.CodeUnavailable, Message: "message of unavailable"}, 2 * time.Second, 2 * time.Second},
		{"retry after a date", func(w http.ResponseWriter) {
			writeError(w, 429, client.CodeRateLimited, time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
		},
			client.Error{Status: 429, Code: client.CodeRateLimited, Message: "message of rate_limited"}, time.Nanosecond, 3 * time.Second},
		{"plain text", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "bad gateway\n")
		}, client.Error{Status: 502, Message: "bad gateway"}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) { tc.respond(w) })
			_, _, err := newClient(t, srv.URL, client.Options{}).Signup(t.Context(), "a@example.com", "A", "password")
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is no *client.Error", err, err)
			}
			got := *e
			ra := got.RetryAfterDelay
			got.RetryAfterDelay = 0
			if got != tc.want || ra < tc.minRA || ra > tc.maxR || e.RetryAfter() != ra {
				t.Errorf("got %+v (retry after %s), want %+v (retry after %s..%s)", got, ra, tc.want, tc.minRA, tc.maxR)
			}
			if tc.want.Code != "" && (!client.IsCode(err, tc.want.Code) || !strings.Contains(err.Error(), tc.want.Code)) {
				t.Errorf("IsCode or Error() misses %q: %v", tc.want.Code, err)
			}
			if client.IsCode(err, "other") || client.IsCode(nil, "") || client.IsCode(errors.New("x"), "") {
				t.Error("IsCode matched what it should not")
			}
		})
	}
}
