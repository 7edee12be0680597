package app_test

import (
	"testing"

	"github.com/quizstream/quizstream/app"
)

// A URL's password, a password query parameter and a NATS URL's token are
// hidden; a connection string that is no URL is hidden whole.
func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable": "postgres://u:REDACTED@h:5432/db?sslmode=disable",
		"postgres://h/db?password=secret":               "postgres://h/db?password=REDACTED",
		"postgres://localhost:5432/quizstream":          "postgres://localhost:5432/quizstream",
		"host=h password=secret":                        "(redacted)",
		"nats://127.0.0.1:4222":                         "nats://127.0.0.1:4222",
	} {
		if got := app.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
