// Package eventlog publishes events to the families' streams and reads
// them back: the coalescing publisher (atomic batches, each caller answered
// from its position), the per-family logs with their compare-and-set, and
// the range reader replay uses.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
)

// Log is the attempts stream seen from the API: it publishes events and
// reads them back. It is safe for concurrent use.
type Log struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	consumer string
	// alsoBy names a second durable consumer an event must be
	// acknowledged by before it counts as settled (the read model's,
	// SettledAlsoBy), or "".
	alsoBy string

	trimmed        atomic.Bool  // the stream was seen to have removed events
	trimCheckedAtN atomic.Int64 // when it was last seen not to have (unix nanoseconds)
}

// OpenLog returns a Log on the attempts stream and consumer cfg names as
// they are, changing no setting (an operator applies them: Apply, `quizstream
// stream apply`). It returns an error wrapping ErrNotApplied when the stream
// or the consumer does not exist, or the error of the lookup.
func OpenLog(ctx context.Context, js jetstream.JetStream, cfg streams.StreamConfig) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, streams.ErrNotApplied)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	if _, err := js.Consumer(ctx, cfg.Name, cfg.Consumer); errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Consumer, streams.ErrNotApplied)
	} else if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Consumer, err)
	}
	return &Log{js: js, stream: s, consumer: cfg.Consumer}, nil
}

// NewLog applies cfg as `quizstream stream apply --force` does (the
// streams, the consumer and the content bucket created or updated, even
// where that lowers a limit) and returns a Log on them: for tests and
// tools that own their server. A service process uses OpenLog.
func NewLog(ctx context.Context, js jetstream.JetStream, cfg streams.StreamConfig) (*Log, error) {
	if _, err := streams.Apply(ctx, js, true, streams.Attempts(cfg)); err != nil {
		return nil, err
	}
	return OpenLog(ctx, js, cfg)
}

// Published is the outcome of PublishAttempt.
type Published struct {
	// Event is the event the stream holds: the one published, or for a
	// duplicate the original, which may differ from the one offered.
	Event events.AttemptSubmitted
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
func (l *Log) PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (Published, error) {
	m, err := l.attemptMsg(e)
	if err != nil {
		return Published{}, err
	}
	ack, err := l.js.PublishMsg(ctx, m)
	return l.settle(ctx, e, ack, err)
}

// attemptMsg is e's message with its guards: its id, its stream, and the
// per-attempt subject's compare-and-set that refuses a second event on it
// forever, not only within the duplicate window.
func (l *Log) attemptMsg(e events.AttemptSubmitted) (*nats.Msg, error) {
	data, err := events.Encode(e)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: e.Subject(), Data: data, Header: nats.Header{
		jetstream.MsgIDHeader:               {e.AttemptID.String()},
		jetstream.ExpectedStreamHeader:      {l.stream.CachedInfo().Config.Name},
		jetstream.ExpectedLastSubjSeqHeader: {"0"},
	}}, nil
}

// settle turns the stream's answer to e's publish into the event the
// stream holds: e itself, or for a duplicate (its id inside the window, or
// its subject's guard after it) the original, read back.
func (l *Log) settle(ctx context.Context, e events.AttemptSubmitted, ack *jetstream.PubAck, err error) (Published, error) {
	var orig *jetstream.RawStreamMsg
	switch {
	case err == nil && !ack.Duplicate:
		return Published{Event: e, Seq: ack.Sequence}, nil
	case err == nil:
		orig, err = l.stream.GetMsg(ctx, ack.Sequence)
	case isWrongLastSequence(err):
		orig, err = l.stream.GetLastMsgForSubject(ctx, e.Subject())
	default:
		return Published{}, fmt.Errorf("publish attempt: %w", err)
	}
	if err != nil {
		return Published{}, fmt.Errorf("read original attempt: %w", err)
	}
	stored, err := events.Decode(orig.Data)
	if err != nil {
		return Published{}, fmt.Errorf("read original attempt at seq %d: %w", orig.Sequence, err)
	}
	return Published{Event: stored, Seq: orig.Sequence, Duplicate: true}, nil
}

// IsStreamFull reports whether err is the stream refusing a publish
// because it holds MaxBytes or MaxMsgs (DiscardNew): no publish succeeds
// until MaxAge removes old events or an operator raises the limits. The
// server reports both as its generic "store failed" error (10077); the
// description, part of its wire protocol, tells them from an I/O failure.
func IsStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeStoreFailed {
		return false
	}
	switch apiErr.Description {
	case "maximum bytes exceeded", "maximum messages exceeded":
		return true
	}
	return false
}

// errCodeStoreFailed is JetStream's "storing a message failed" (JSStreamStoreFailedF).
const errCodeStoreFailed jetstream.ErrorCode = 10077

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// SettledAlsoBy makes an event settled only once the durable consumer
// named consumer has acknowledged it too (the read model's projection:
// student reads answer from it, and must find in the stream what it has
// not folded yet). Call it before the Log is used.
func (l *Log) SettledAlsoBy(consumer string) { l.alsoBy = consumer }

// AckFloor returns the stream sequence at and below which the workers have
// acknowledged every event (and the consumer SettledAlsoBy names, when
// set: the lower of the two floors), or the error of the lookup.
func (l *Log) AckFloor(ctx context.Context) (uint64, error) {
	c, err := l.Consumer(ctx)
	if err != nil {
		return 0, fmt.Errorf("ack floor: %w", err)
	}
	floor := c.CachedInfo().AckFloor.Stream
	if l.alsoBy == "" {
		return floor, nil
	}
	also, err := l.js.Consumer(ctx, l.stream.CachedInfo().Config.Name, l.alsoBy)
	if err != nil {
		return 0, fmt.Errorf("ack floor: consumer %s: %w", l.alsoBy, err)
	}
	return min(floor, also.CachedInfo().AckFloor.Stream), nil
}

// Trimmed reports whether the stream has removed events (MaxAge, a purge):
// until it has, every event it ever accepted is in it, and its
// per-attempt guard recognises any retry by itself; after, a retry's
// original may be gone, and only PostgreSQL knows it. It asks the stream
// at most once a second, and says true when it cannot tell.
func (l *Log) Trimmed(ctx context.Context) bool {
	if l.trimmed.Load() {
		return true
	}
	if time.Since(time.Unix(0, l.trimCheckedAtN.Load())) < time.Second {
		return false
	}
	info, err := l.stream.Info(ctx)
	if err != nil {
		return true
	}
	if info.State.FirstSeq > 1 {
		l.trimmed.Store(true)
		return true
	}
	l.trimCheckedAtN.Store(time.Now().UnixNano())
	return false
}

// Capacity returns what the stream holds against its limits, read now, or
// the error of the lookup.
func (l *Log) Capacity(ctx context.Context) (streams.Capacity, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return streams.Capacity{}, fmt.Errorf("stream info: %w", err)
	}
	return streams.CapacityOf(info), nil
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
	m, err := l.stream.GetLastMsgForSubject(ctx, events.AttemptSubject(student, attempt))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Published{}, ErrNotInLog
	}
	if err != nil {
		return Published{}, fmt.Errorf("read attempt: %w", err)
	}
	e, err := events.Decode(m.Data)
	if err != nil { // not an attempt anyone can read
		return Published{}, fmt.Errorf("%w: seq %d: %w", ErrNotInLog, m.Sequence, err)
	}
	return Published{Event: e, Seq: m.Sequence}, nil
}

// StudentAttempts returns up to max of a student's events with a sequence
// above after, oldest first: with after = the ack floor, the attempts that
// workers may not have stored yet. Undecodable events are skipped.
func (l *Log) StudentAttempts(ctx context.Context, student uuid.UUID, after uint64, max int) ([]Published, error) {
	subject := events.StudentSubjects(student)
	var out []Published
	for seq := after + 1; len(out) < max; {
		m, err := l.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read student attempts: %w", err)
		}
		if e, err := events.Decode(m.Data); err == nil {
			out = append(out, Published{Event: e, Seq: m.Sequence})
		}
		seq = m.Sequence + 1
	}
	return out, nil
}

// LastSeq returns the stream's last sequence, or the error of the lookup.
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// OrderedConsumer returns an ordered consumer on the stream as cfg says:
// a reader of the whole stream that acknowledges nothing.
func (l *Log) OrderedConsumer(ctx context.Context, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	return l.js.OrderedConsumer(ctx, l.stream.CachedInfo().Config.Name, cfg)
}

// CountStudentAttempts counts up to max of a student's events above
// after, reading them from the stream (StudentAttempts).
func (l *Log) CountStudentAttempts(ctx context.Context, student uuid.UUID, after uint64, max int) (int, error) {
	out, err := l.StudentAttempts(ctx, student, after, max)
	return len(out), err
}
