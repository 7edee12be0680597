package app_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// Stream settings have one owner: an api or worker process started with
// other settings changes none of them (a shorter MaxAge would delete the
// events older than it), and starts, warning.
func TestProcessesDoNotChangeStreamSettings(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{MaxAge: time.Hour, MaxBytes: 1 << 30})
	for name, withAPI := range map[string]bool{"worker": false, "api": true} {
		cfg := s.Config(t)
		cfg.ApplyStream = false
		cfg.Stream.MaxAge, cfg.Stream.Duplicates, cfg.Stream.MaxBytes, cfg.Stream.AckWait = time.Minute, time.Minute, 1<<20, 5*time.Second
		if withAPI {
			cfg.API = true
		} else {
			cfg.Workers = 1
		}
		in := s.Start(t, cfg)
		in.Stop()
		stream, err := s.JS.Stream(t.Context(), s.Stream.Name)
		if err != nil {
			t.Fatal(err)
		}
		if c := stream.CachedInfo().Config; c.MaxAge != time.Hour || c.MaxBytes != 1<<30 || c.Duplicates != s.Stream.Duplicates {
			t.Fatalf("a %s process started with other settings changed the stream: max_age %s, max_bytes %d, duplicates %s",
				name, c.MaxAge, c.MaxBytes, c.Duplicates)
		}
		cons, err := s.JS.Consumer(t.Context(), s.Stream.Name, s.Stream.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		if cons.CachedInfo().Config.AckWait != s.Stream.AckWait {
			t.Fatalf("a %s process changed the consumer's ack wait", name)
		}
	}
}

// A process refuses to start on a stream whose durability differs from
// its configuration (here the discard policy: a full stream would delete
// its oldest events), on a missing stream, and (a worker) on a missing
// dead-letter stream, naming the command that fixes it.
func TestProcessesRefuseWhatTheyCannotTrust(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	start := func(cfg app.Config) error {
		cfg.ApplyStream = false
		a, err := app.New(t.Context(), cfg)
		if err == nil {
			a.Close()
		}
		return err
	}
	worker, apiOnly := s.Config(t), s.Config(t)
	worker.Workers, apiOnly.API = 1, true

	// Replicas the server cannot hold are refused before anything is asked of it.
	r3 := worker
	r3.Stream.Replicas = 3
	if err := start(r3); err == nil || !strings.Contains(err.Error(), "durability") || !strings.Contains(err.Error(), "replicas 1 -> 3") {
		t.Errorf("worker expecting R3 on an R1 stream: %v, want a refusal naming the replicas", err)
	}

	stream, err := s.JS.Stream(t.Context(), s.Stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	c := stream.CachedInfo().Config
	c.Discard = 0 // DiscardOld
	if _, err := s.JS.UpdateStream(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]app.Config{"worker": worker, "api": apiOnly} {
		err := start(cfg)
		if err == nil || !strings.Contains(err.Error(), "discard DiscardOld -> DiscardNew") {
			t.Errorf("%s on a discard-old stream: %v, want a refusal naming the discard policy", name, err)
		}
	}
	if stream, _ := s.JS.Stream(t.Context(), s.Stream.Name); stream.CachedInfo().Config.Discard != 0 {
		t.Fatal("a refused process changed the stream")
	}
	// Applied (as `quizstream stream apply` does), they start.
	if _, err := streams.Apply(t.Context(), s.JS, false, streams.Declared(s.Stream, streams.ExamStreamConfig{}, streams.CheckStreamConfig{})...); err != nil {
		t.Fatal(err)
	}
	if err := start(worker); err != nil {
		t.Fatalf("worker after apply: %v", err)
	}

	if err := s.JS.DeleteStream(t.Context(), s.Stream.DeadLetterStream()); err != nil {
		t.Fatal(err)
	}
	if err := start(worker); !errors.Is(err, streams.ErrNotApplied) || !strings.Contains(err.Error(), "quizstream stream apply") {
		t.Errorf("worker without a dead-letter stream: %v, want ErrNotApplied", err)
	}
	if err := start(apiOnly); err != nil {
		t.Errorf("api without a dead-letter stream (it needs none): %v", err)
	}

	if err := s.JS.DeleteStream(t.Context(), s.Stream.Name); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]app.Config{"worker": worker, "api": apiOnly} {
		if err := start(cfg); !errors.Is(err, streams.ErrNotApplied) || !strings.Contains(err.Error(), "quizstream stream apply") {
			t.Errorf("%s without a stream: %v, want ErrNotApplied naming quizstream stream apply", name, err)
		}
	}
	if _, err := s.JS.Stream(t.Context(), s.Stream.Name); err == nil {
		t.Fatal("a process created the stream")
	}
}
