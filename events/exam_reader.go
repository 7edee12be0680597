package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// OpenExamReader opens a Reader on the exams events stream cfg names over
// r: the session events in stream order, as OpenReader reads attempts. It
// returns ErrNoStream when there is no such stream, or the error that
// stopped it.
func OpenExamReader(ctx context.Context, js jetstream.JetStream, cfg ExamStreamConfig, r Range) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r.FromSeq == 0 {
		r.FromSeq = 1
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 500
	}
	if r.IdleWait <= 0 {
		r.IdleWait = 2 * time.Second
	}
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	rd := &Reader{js: js, stream: cfg.Name, r: r, last: info.State.LastSeq}
	if info.State.Msgs == 0 || (r.Since.IsZero() && r.FromSeq > rd.last) {
		rd.done = true
		return rd, nil
	}
	oc := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{ExamSubjectPrefix + ".>"},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.FromSeq,
		InactiveThreshold: time.Minute,
	}
	if !r.Since.IsZero() {
		since := r.Since
		oc.DeliverPolicy, oc.OptStartSeq, oc.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &since
	}
	if rd.cons, err = js.OrderedConsumer(ctx, cfg.Name, oc); err != nil {
		return nil, fmt.Errorf("ordered consumer on %s: %w", cfg.Name, err)
	}
	if rd.iter, err = rd.cons.Messages(jetstream.PullMaxMessages(r.BatchSize)); err != nil {
		return nil, fmt.Errorf("read %s: %w", cfg.Name, err)
	}
	if ci := rd.cons.CachedInfo(); ci != nil {
		rd.estimate = ci.NumPending
		if ci.NumPending == 0 {
			rd.done = true
		}
	}
	if r.Since.IsZero() && r.FromSeq >= info.State.FirstSeq {
		rd.estimate = min(rd.estimate, rd.last-r.FromSeq+1)
	}
	return rd, nil
}
