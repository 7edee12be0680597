package main

import (
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable": "postgres://u:REDACTED@h:5432/db?sslmode=disable",
		"postgres://h/db?password=secret":               "postgres://h/db?password=REDACTED",
		"postgres://localhost:5432/quizstream":          "postgres://localhost:5432/quizstream",
		"host=h password=secret":                        "(redacted)",
		"nats://127.0.0.1:4222":                         "nats://127.0.0.1:4222",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A flag beats its variable, which beats the default; a bad variable is an
// error that names it.
func TestFlagsPrecedence(t *testing.T) {
	env := map[string]string{"PUBLISH_TIMEOUT": "3s", "BODY_LIMIT": "100"}
	var c config
	var stderr strings.Builder
	f := newFlags("api", func(k string) string { return env[k] }, &stderr)
	f.api(&c)
	if err := f.parse([]string{"-body-limit", "200"}); err != nil {
		t.Fatal(err)
	}
	if c.API.PublishTimeout != 3*time.Second || c.API.BodyLimit != 200 || c.ListenAddr != "127.0.0.1:8080" {
		t.Fatalf("config = %+v", c)
	}
	env["PUBLISH_TIMEOUT"] = "soon"
	f = newFlags("api", func(k string) string { return env[k] }, &stderr)
	f.api(&c)
	if err := f.parse(nil); err == nil || !strings.Contains(err.Error(), "PUBLISH_TIMEOUT") {
		t.Fatalf("bad variable: %v", err)
	}
}
