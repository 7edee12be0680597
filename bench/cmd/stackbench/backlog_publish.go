package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/streams"
)

// publishBacklog publishes the n events through a Batcher from many
// concurrent callers, as the API does, with no worker running.
func (b *bench) publishBacklog(ctx context.Context, ns *natsServer, gen backlogEvents, res *backlogResult) error {
	n := res.Attempts
	nc, err := nats.Connect(ns.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	lg, err := eventlog.OpenLog(ctx, js, streams.StreamConfig{})
	if err != nil {
		return err
	}
	cfg := eventlog.BatchConfig{MaxMessages: 1000, MaxInflight: 4}
	bt, err := eventlog.NewBatcher(ctx, lg, cfg)
	if err != nil {
		return err
	}
	defer bt.Close()
	res.Publishers, res.PublishBatch, res.PublishAtomic = backlogPublishers, cfg.MaxMessages, bt.Batching()
	b.say("backlog: publishing %d attempts from %d concurrent callers (atomic batches of up to %d: %v)", n, backlogPublishers, cfg.MaxMessages, res.PublishAtomic)

	var next, done, retries atomic.Int64
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := time.Now()
	for range backlogPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ev := gen.event(i, time.Now())
				for try := 0; ; try++ {
					_, err := bt.PublishAttempt(pctx, ev)
					if err == nil {
						break
					}
					if try == 10 || pctx.Err() != nil {
						cancel(fmt.Errorf("publish attempt %d: %w", i, err))
						return
					}
					retries.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
				done.Add(1)
			}
		}()
	}
	stopProgress := b.every(5*time.Second, func() {
		b.say("backlog: published %d of %d (%.0f/s)", done.Load(), n, float64(done.Load())/time.Since(start).Seconds())
	})
	wg.Wait()
	stopProgress()
	res.PublishSeconds = time.Since(start).Seconds()
	res.PublishRetries = retries.Load()
	if err := context.Cause(pctx); err != nil {
		return err
	}
	info, err := js.Stream(ctx, streams.DefaultStreamName)
	if err != nil {
		return err
	}
	if got := info.CachedInfo().State.Msgs; got != uint64(n) { //nolint:gosec // G115: n is the backlog, above 0
		return fmt.Errorf("the stream holds %d events after %d publishes", got, n)
	}
	res.StreamBytes = info.CachedInfo().State.Bytes
	b.say("backlog: published %d attempts in %.1fs (%.0f/s), stream %.0f MiB", n, res.PublishSeconds,
		float64(n)/res.PublishSeconds, float64(res.StreamBytes)/(1<<20))
	return nil
}
