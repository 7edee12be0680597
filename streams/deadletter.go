package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetterPrefix roots the subjects of the dead-letter stream.
const DeadLetterPrefix = "quizstream.dlq"

// Headers of a dead letter.
const (
	HeaderReason          = "Quizstream-Reason"
	HeaderOriginalSeq     = "Quizstream-Original-Seq"
	HeaderOriginalSubject = "Quizstream-Original-Subject"
)

// DeadLetter is a message that could never be stored, set aside with why.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream.
	Seq uint64
	// OriginalSeq and OriginalSubject say where it stood in the attempts stream.
	OriginalSeq     uint64
	OriginalSubject string
	Reason          string
	Data            []byte
	Time            time.Time
}

// DeadLetters is the dead-letter stream: a copy of every message the
// workers terminated, with the reason, for operators to inspect and
// redrive once the cause is fixed.
type DeadLetters struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	attempts string
}

// EnsureDeadLetters creates or updates the dead-letter stream that goes
// with the attempts stream cfg describes (named after it, "_DLQ" added),
// without the checks of Apply, and returns it: for tests and tools that
// own their server. A worker only looks (LookupDeadLetters).
func EnsureDeadLetters(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (*DeadLetters, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, deadLetterConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("ensure dead-letter stream: %w", err)
	}
	return &DeadLetters{js: js, stream: s, attempts: cfg.Name}, nil
}

// LookupDeadLetters returns the dead-letter stream that goes with the
// attempts stream cfg names, without changing its configuration, or the
// error of the lookup.
func LookupDeadLetters(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (*DeadLetters, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, cfg.DeadLetterStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("dead-letter stream %s: %w", cfg.DeadLetterStream(), ErrNotApplied)
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", cfg.DeadLetterStream(), err)
	}
	return &DeadLetters{js: js, stream: s, attempts: cfg.Name}, nil
}

// Put copies a terminated message to the dead-letter stream and returns
// once the stream holds it; a second Put of the same original sequence is
// dropped as a duplicate. A refusal of the server (the stream full, say)
// is a *jetstream.APIError in the chain, and a missing stream
// jetstream.ErrNoStreamResponse: neither goes away by trying again soon.
func (d *DeadLetters) Put(ctx context.Context, dl DeadLetter) error {
	msg := &nats.Msg{
		Subject: DeadLetterPrefix + "." + strconv.FormatUint(dl.OriginalSeq, 10),
		Data:    dl.Data,
		Header:  nats.Header{},
	}
	msg.Header.Set(HeaderReason, dl.Reason)
	msg.Header.Set(HeaderOriginalSeq, strconv.FormatUint(dl.OriginalSeq, 10))
	msg.Header.Set(HeaderOriginalSubject, dl.OriginalSubject)
	if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("dlq-%d", dl.OriginalSeq))); err != nil {
		return fmt.Errorf("put dead letter: %w", err)
	}
	return nil
}

// ErrNoDeadLetter means the dead-letter stream holds no such message.
var ErrNoDeadLetter = errors.New("no such dead letter")

// Get returns the dead letter at seq, or ErrNoDeadLetter.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	m, err := d.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, ErrNoDeadLetter
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("get dead letter %d: %w", seq, err)
	}
	return fromRaw(m), nil
}

func fromRaw(m *jetstream.RawStreamMsg) DeadLetter {
	orig, _ := strconv.ParseUint(m.Header.Get(HeaderOriginalSeq), 10, 64)
	return DeadLetter{
		Seq:             m.Sequence,
		OriginalSeq:     orig,
		OriginalSubject: m.Header.Get(HeaderOriginalSubject),
		Reason:          m.Header.Get(HeaderReason),
		Data:            m.Data,
		Time:            m.Time,
	}
}

// List returns up to limit dead letters, oldest first, from the sequence
// from on.
func (d *DeadLetters) List(ctx context.Context, from uint64, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	for seq := max(from, 1); len(out) < limit; {
		m, err := d.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(DeadLetterPrefix+".>"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		out = append(out, fromRaw(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// Redrive publishes a dead letter again on its original subject, under a
// new Nats-Msg-Id (the original's may still be in the duplicate window,
// which would drop it silently), then removes it from the dead-letter
// stream. Storing it twice is prevented by the attempts primary key. It
// returns the new sequence in the attempts stream.
func (d *DeadLetters) Redrive(ctx context.Context, seq uint64) (uint64, error) {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return 0, err
	}
	if dl.OriginalSubject == "" {
		return 0, fmt.Errorf("redrive dead letter %d: it names no original subject", seq)
	}
	ack, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: dl.OriginalSubject, Data: dl.Data},
		jetstream.WithMsgID(fmt.Sprintf("redrive-%d-%d", dl.OriginalSeq, seq)),
		jetstream.WithExpectStream(d.attempts))
	if err != nil {
		return 0, fmt.Errorf("redrive dead letter %d: %w", seq, err)
	}
	if err := d.stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ack.Sequence, fmt.Errorf("redrive dead letter %d: republished as %d, but not removed: %w", seq, ack.Sequence, err)
	}
	return ack.Sequence, nil
}

// Count returns how many dead letters the stream holds.
func (d *DeadLetters) Count(ctx context.Context) (uint64, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dead letters: %w", err)
	}
	return info.State.Msgs, nil
}
