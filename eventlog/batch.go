package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/quizstream/quizstream/events"
)

// Index is what a Batcher knows of the stream without asking it: the
// unsettled attempts an API instance follows (a Tail).
type Index interface {
	// Held returns the stream's event of a student's attempt when the
	// index holds it, at once.
	Held(student, attempt uuid.UUID) (Published, bool)
	// CaughtUp waits until the index holds every event the stream held
	// when it was called; false if it did not in time.
	CaughtUp(ctx context.Context) bool
	// Stored tells the index of an event the Batcher has just published
	// (Duplicate set when the stream held it already), so that it need not
	// decode it again when the stream delivers it.
	Stored(Published)
}

// Batcher is a Log whose PublishAttempt goes through the attempts family's
// Publisher: concurrent attempts share atomic batch publishes, so a server
// syncing every write syncs a few times per batch rather than once per
// attempt. Each attempt is answered as (*Log).PublishAttempt answers it.
// It is safe for concurrent use; Close stops it.
type Batcher struct {
	*Log
	pub   *Publisher
	index Index
}

// NewBatcher reads the stream's configuration and returns a Batcher
// publishing into l's stream, or the error of the lookup or of cfg. ctx
// bounds the lookup; the Batcher runs until Close.
func NewBatcher(ctx context.Context, l *Log, cfg BatchConfig) (*Batcher, error) {
	b := &Batcher{Log: l, index: cfg.Index}
	pub, err := NewPublisher(ctx, l.js, l.stream.CachedInfo().Config.Name, "attempts", cfg, b.sift)
	if err != nil {
		return nil, err
	}
	b.pub = pub
	return b, nil
}

// NewBatchCollector returns the collector of b's metrics, to register once.
func NewBatchCollector(b *Batcher) *BatchCollector { return b.pub.Collector() }

// Batching reports whether PublishAttempt publishes in atomic batches.
func (b *Batcher) Batching() bool { return b.pub.Batching() }

// Close stops the Batcher's Publisher (the batches in flight are answered
// first); PublishAttempt then returns ErrClosed.
func (b *Batcher) Close() { b.pub.Close() }

// PublishAttempt appends e to the stream and returns once the stream has
// acknowledged it, like (*Log).PublishAttempt: the stream keeps one event
// per attempt id, and when it already holds one, inside the duplicate
// window or long after, PublishAttempt returns that original with
// Duplicate set. It waits at most the batch window for other attempts to
// share its batch. Any error means the outcome is unknown; ctx's error
// when ctx ends first, ErrClosed after Close.
func (b *Batcher) PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (Published, error) {
	if pub, ok := b.held(e.StudentID, e.AttemptID); ok {
		// A retry of an attempt the stream holds: publishing it would only
		// get the batch it joined refused.
		return pub, nil
	}
	m, err := b.attemptMsg(e)
	if err != nil {
		return Published{}, err
	}
	ack, err := b.pub.Publish(ctx, m)
	if err == nil && ack.Duplicate {
		if pub, ok := b.held(e.StudentID, e.AttemptID); ok {
			return pub, nil
		}
	}
	return b.stored(b.settle(ctx, e, ack, err))
}

// stored tells the index of a published event and returns it as it is.
func (b *Batcher) stored(pub Published, err error) (Published, error) {
	if err == nil && b.index != nil {
		b.index.Stored(pub)
	}
	return pub, err
}

// held returns an attempt's original as a duplicate when the index holds it.
func (b *Batcher) held(student, attempt uuid.UUID) (Published, bool) {
	if b.index == nil {
		return Published{}, false
	}
	pub, ok := b.index.Held(student, attempt)
	if !ok {
		return Published{}, false
	}
	b.pub.metrics.held.Inc()
	pub.Duplicate = true
	return pub, true
}

// sift is the attempts family's answer to a batch refused for holding a
// duplicate: those whose subject the stream holds are duplicates, settled
// with the original's sequence; the rest go again. The index names those
// it holds once it has caught up; without it (or when it holds none of
// them: settled long ago) each is looked up.
func (b *Batcher) sift(ctx context.Context, refused []*nats.Msg) []*Settled {
	out := make([]*Settled, len(refused))
	if b.index != nil && b.index.CaughtUp(ctx) {
		found := false
		for i, m := range refused {
			student, attempt, ok := events.ParseAttemptSubject(m.Subject)
			if !ok {
				continue
			}
			if pub, ok := b.index.Held(student, attempt); ok {
				out[i] = &Settled{Ack: &jetstream.PubAck{Stream: b.pub.name, Sequence: pub.Seq, Duplicate: true}}
				found = true
			}
		}
		if found {
			return out
		}
	}
	var g errgroup.Group
	g.SetLimit(16)
	for i, m := range refused {
		g.Go(func() error {
			orig, err := b.stream.GetLastMsgForSubject(ctx, m.Subject)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
			case err != nil:
				out[i] = &Settled{Err: fmt.Errorf("read original attempt: %w", err)}
			default:
				out[i] = &Settled{Ack: &jetstream.PubAck{Stream: b.pub.name, Sequence: orig.Sequence, Duplicate: true}}
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}
