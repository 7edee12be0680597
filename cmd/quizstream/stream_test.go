package main

import (
	"bytes"
	"encoding/json"
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
	maxAgeFlag := "2h"
	var stdout, stderr bytes.Buffer
	stream := func(args ...string) error {
		stdout.Reset()
		stderr.Reset()
		args = append([]string{"stream"}, append(args, "--nats-url", ns.ClientURL(), "--log-level", "warn",
			"--stream-max-age", maxAgeFlag, "--stream-max-msgs", "1000")...)
		err := run(t.Context(), args, &stdout, &stderr)
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
	maxAgeFlag = "1h"
	if err := stream("apply"); !errors.Is(err, streams.ErrRefused) || maxAge() != 2*time.Hour {
		t.Fatalf("apply of a shorter max_age: %v, max_age %s; want refused", err, maxAge())
	}
	if err := stream("apply", "--force"); err != nil || maxAge() != time.Hour {
		t.Fatalf("apply --force: %v, max_age %s", err, maxAge())
	}
	var st streams.StatusResult
	if err := stream("status", "--json"); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	err := json.Unmarshal(stdout.Bytes(), &st)
	attempts, _ := st.Family("attempts")
	exams, _ := st.Family("exams")
	if err != nil || len(attempts.Streams) != 2 || attempts.Streams[0].Name != streams.DefaultStreamName || attempts.Streams[0].MaxAge != time.Hour ||
		len(attempts.Consumers) != 2 || len(exams.Streams) != 2 || len(exams.Consumers) != 2 || len(st.Mismatches) != 0 {
		t.Fatalf("status --json: %v, %+v", err, st)
	}
	maxAgeFlag = "3h" // what status compares the stream with
	if err := stream("status", "--json"); err != nil || json.Unmarshal(stdout.Bytes(), &st) != nil || len(st.Mismatches) == 0 {
		t.Fatalf("status --json against other settings: %v, %+v", err, st)
	}
	if err := stream("purge"); !errors.Is(err, errUsage) {
		t.Fatalf("an unknown verb: %v", err)
	}
}
