package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Log is the attempts stream seen from the API: it publishes events and
// reads them back. It is safe for concurrent use.
type Log struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	consumer string
	changed  []string
}

// NewLog ensures the stream and its consumer exist as cfg says and returns
// a Log on them, or the error that stopped it.
func NewLog(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var changed []string
	if old, err := js.Stream(ctx, cfg.Name); err == nil {
		changed = changes(old.CachedInfo().Config, cfg)
	}
	s, err := EnsureStream(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := EnsureConsumer(ctx, js, cfg); err != nil {
		return nil, err
	}
	return &Log{js: js, stream: s, consumer: cfg.Consumer, changed: changed}, nil
}

// Changed lists the stream settings NewLog changed on an existing stream:
// every process applies its own configuration, so a process started with
// other settings changes them for all (a shorter MaxAge deletes events).
func (l *Log) Changed() []string { return l.changed }

func changes(old jetstream.StreamConfig, cfg StreamConfig) []string {
	var out []string
	diff := func(name string, was, now any) {
		if was != now {
			out = append(out, fmt.Sprintf("%s %v -> %v", name, was, now))
		}
	}
	diff("replicas", old.Replicas, cfg.Replicas)
	diff("max_age", old.MaxAge, cfg.MaxAge)
	diff("max_bytes", old.MaxBytes, cfg.MaxBytes)
	diff("duplicates", old.Duplicates, cfg.Duplicates)
	return out
}

// Published is the outcome of PublishAttempt.
type Published struct {
	// Event is the event the stream holds: the one published, or for a
	// duplicate the original, which may differ from the one offered.
	Event AttemptSubmitted
	// Seq is the event's stream sequence.
	Seq uint64
	// Duplicate is true when the stream already held this attempt id.
	Duplicate bool
}

// PublishAttempt appends e to the stream and returns once the stream has
// acknowledged it (durably, as the stream is configured). The stream keeps
// one event per attempt id: when it already holds one, inside the duplicate
// window or long after, PublishAttempt returns that original with
// Duplicate set. Any error means the outcome is unknown.
func (l *Log) PublishAttempt(ctx context.Context, e AttemptSubmitted) (Published, error) {
	data, err := Encode(e)
	if err != nil {
		return Published{}, err
	}
	subject := e.Subject()
	ack, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data},
		jetstream.WithMsgID(e.AttemptID.String()),
		jetstream.WithExpectStream(l.stream.CachedInfo().Config.Name),
		// Refuse a second event on this attempt's subject forever, not only
		// within the duplicate window.
		jetstream.WithExpectLastSequencePerSubject(0))
	var orig *jetstream.RawStreamMsg
	switch {
	case err == nil && !ack.Duplicate:
		return Published{Event: e, Seq: ack.Sequence}, nil
	case err == nil:
		orig, err = l.stream.GetMsg(ctx, ack.Sequence)
	case isWrongLastSequence(err):
		orig, err = l.stream.GetLastMsgForSubject(ctx, subject)
	default:
		return Published{}, fmt.Errorf("publish attempt: %w", err)
	}
	if err != nil {
		return Published{}, fmt.Errorf("read original attempt: %w", err)
	}
	stored, err := Decode(orig.Data)
	if err != nil {
		return Published{}, fmt.Errorf("read original attempt at seq %d: %w", orig.Sequence, err)
	}
	return Published{Event: stored, Seq: orig.Sequence, Duplicate: true}, nil
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// AckFloor returns the stream sequence at and below which the workers have
// acknowledged every event, or the error of the lookup.
func (l *Log) AckFloor(ctx context.Context) (uint64, error) {
	c, err := l.Consumer(ctx)
	if err != nil {
		return 0, fmt.Errorf("ack floor: %w", err)
	}
	return c.CachedInfo().AckFloor.Stream, nil
}

// Ping reports whether the stream answers.
func (l *Log) Ping(ctx context.Context) error {
	if _, err := l.stream.Info(ctx); err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	return nil
}

// Consumer returns the durable consumer that workers share.
func (l *Log) Consumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := l.js.Consumer(ctx, l.stream.CachedInfo().Config.Name, l.consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", l.consumer, err)
	}
	return c, nil
}

// ErrNotInLog means the log holds no event for the attempt asked for.
var ErrNotInLog = errors.New("attempt not in the event log")

// Attempt returns the event of one attempt of one student, read from its
// subject, or ErrNotInLog.
func (l *Log) Attempt(ctx context.Context, student, attempt uuid.UUID) (Published, error) {
	m, err := l.stream.GetLastMsgForSubject(ctx, AttemptSubject(student, attempt))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Published{}, ErrNotInLog
	}
	if err != nil {
		return Published{}, fmt.Errorf("read attempt: %w", err)
	}
	e, err := Decode(m.Data)
	if err != nil { // not an attempt anyone can read
		return Published{}, fmt.Errorf("%w: seq %d: %w", ErrNotInLog, m.Sequence, err)
	}
	return Published{Event: e, Seq: m.Sequence}, nil
}

// StudentAttempts returns up to max of a student's events with a sequence
// above after, oldest first: with after = the ack floor, the attempts that
// workers may not have stored yet. Undecodable events are skipped.
func (l *Log) StudentAttempts(ctx context.Context, student uuid.UUID, after uint64, max int) ([]Published, error) {
	subject := StudentSubjects(student)
	var out []Published
	for seq := after + 1; len(out) < max; {
		m, err := l.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read student attempts: %w", err)
		}
		if e, err := Decode(m.Data); err == nil {
			out = append(out, Published{Event: e, Seq: m.Sequence})
		}
		seq = m.Sequence + 1
	}
	return out, nil
}
