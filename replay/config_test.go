package replay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// A bad Config is refused, with a message naming the field, before
// anything is read; the defaults make a zero Config (but its
// dependencies) a restore of the whole stream.
func TestConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := time.Now()
	for _, tc := range []struct {
		set  func(*replay.Config)
		want string
	}{
		{func(c *replay.Config) { c.Store = nil }, "Config.Store is required"},
		{func(c *replay.Config) { c.JetStream = nil }, "Config.JetStream is required"},
		{func(c *replay.Config) { c.Mode = "rebuild attempts" }, "Config.Mode"},
		{func(c *replay.Config) { c.FromSeq, c.Since = 5, now }, "Config.FromSeq and Config.Since are exclusive"},
		{func(c *replay.Config) { c.Since, c.Until = now, now.Add(-time.Second) }, "Config.Until"},
		{func(c *replay.Config) { c.BatchSize = -1 }, "Config.BatchSize must be between 1 and 10000"},
		{func(c *replay.Config) { c.BatchSize = replay.MaxBatchSize + 1 }, "Config.BatchSize"},
		{func(c *replay.Config) { c.Swap = true }, "Config.Swap needs Mode"},
		{func(c *replay.Config) { c.Mode = replay.DryRun; c.KeepShadow = true }, "Config.KeepShadow needs Mode"},
		{func(c *replay.Config) { c.Mode, c.Swap, c.KeepShadow = replay.RebuildProgress, true, true }, "are exclusive"},
		{func(c *replay.Config) { c.DiffRows = -1 }, "Config.DiffRows"},
		{func(c *replay.Config) { c.LockTimeout = -time.Second }, "Config.LockTimeout"},
		{func(c *replay.Config) { c.Stream.Replicas = 2 }, "Config.Stream"},
	} {
		cfg := f.config(t, replay.Restore)
		tc.set(&cfg)
		res, err := replay.Run(t.Context(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || res.Mode != "" {
			t.Errorf("Run with a bad Config: %v (mode %q), want an error containing %q and no mode", err, res.Mode, tc.want)
		}
	}

	// The defaults: a restore, from seq 1, in batches of 500.
	for i := range 3 {
		f.publish(t, f.event(uuid.New(), i, 1))
	}
	res, err := replay.Run(t.Context(), replay.Config{Store: f.st, JetStream: f.js})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != replay.Restore || res.FirstSeq != 1 || res.LastSeq != 3 || res.Stored != 3 {
		t.Errorf("Run with the defaults: %+v, want a restore of seq 1 to 3", res)
	}
}

// Run refuses what it cannot start: a stream that does not exist, and a
// rebuild while another one runs; the Result then has no mode.
func TestRunRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config(t, replay.Restore)
	cfg.Stream = streams.StreamConfig{Name: "NO_SUCH_STREAM"}
	if res, err := replay.Run(t.Context(), cfg); !errors.Is(err, eventlog.ErrNoStream) || res.Mode != "" {
		t.Errorf("a replay of a missing stream: %v (mode %q), want ErrNoStream", err, res.Mode)
	}
	rb, err := f.st.StartProgressRebuild(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close(context.Background(), false)
	if res, err := replay.Run(t.Context(), f.config(t, replay.RebuildProgress)); !errors.Is(err, store.ErrRebuildRunning) || res.Mode != "" {
		t.Errorf("a rebuild during another: %v (mode %q), want ErrRebuildRunning", err, res.Mode)
	}
}
