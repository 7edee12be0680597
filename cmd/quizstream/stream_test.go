package main

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
)

// `quizstream stream apply` applies the STREAM_* settings, refuses a
// shorter MaxAge without --force and applies it with; `status` reads them
// back. (streams.Apply and streams.Status are tested field by field in
// package events; this is the command's wiring.)
func TestStreamCommands(t *testing.T) {
	t.Parallel()
	ns := eventstest.NewServer(t)
	_, js := eventstest.Connect(t, ns)
	env := map[string]string{"NATS_URL": ns.ClientURL(), "LOG_LEVEL": "warn", "STREAM_MAX_AGE": "2h", "STREAM_MAX_MSGS": "1000"}
	stream := func(args ...string) error {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"stream"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
		t.Logf("quizstream stream %v:\n%s%s", args, stdout.String(), stderr.String())
		return err
	}
	maxAge := func() time.Duration {
		s, err := js.Stream(t.Context(), streams.DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.MaxAge
	}
	if err := stream("status"); !errors.Is(err, streams.ErrNotApplied) {
		t.Fatalf("status before apply: %v, want ErrNotApplied", err)
	}
	if err := stream("apply"); err != nil || maxAge() != 2*time.Hour {
		t.Fatalf("apply: %v, max_age %s", err, maxAge())
	}
	if err := stream("status"); err != nil {
		t.Fatalf("status: %v", err)
	}
	env["STREAM_MAX_AGE"] = "1h"
	if err := stream("apply"); !errors.Is(err, streams.ErrRefused) || maxAge() != 2*time.Hour {
		t.Fatalf("apply of a shorter max_age: %v, max_age %s; want refused", err, maxAge())
	}
	if err := stream("apply", "--force"); err != nil || maxAge() != time.Hour {
		t.Fatalf("apply --force: %v, max_age %s", err, maxAge())
	}
	if err := stream("status"); err != nil {
		t.Fatalf("status: %v", err)
	}
	if err := stream("purge"); !errors.Is(err, errUsage) {
		t.Fatalf("an unknown verb: %v", err)
	}
}
