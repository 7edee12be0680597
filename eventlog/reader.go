package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
)

// Range selects the part of the attempts stream a Reader reads.
type Range struct {
	// FromSeq is the first sequence read when Since is zero. Defaults to 1.
	FromSeq uint64
	// Since, when set, starts at the first message stored at or after it.
	Since time.Time
	// Until, when set, ends before the first message stored after it.
	Until time.Time
	// BatchSize is the most messages Next returns at once. Defaults to 500.
	BatchSize int
	// IdleWait is how long Next waits for a message before it asks the
	// server whether any is left to read. Defaults to 2s.
	IdleWait time.Duration
}

// StreamMsg is one message of the attempts stream, as stored.
type StreamMsg struct {
	Seq     uint64
	Subject string
	Data    []byte
	Time    time.Time
}

// Reader reads a range of the attempts stream in stream order, in
// batches, with an ordered consumer (ephemeral, unacknowledged: it changes
// nothing on the server but itself). The range ends at the stream's last
// sequence when the Reader was opened, so reading a live stream ends.
type Reader struct {
	js       jetstream.JetStream
	stream   string
	r        Range
	last     uint64
	estimate uint64
	cons     jetstream.Consumer
	iter     jetstream.MessagesContext
	done     bool
}

// ErrNoStream means the attempts stream does not exist.
var ErrNoStream = errors.New("the attempts stream does not exist")

// OpenReader opens a Reader on the stream cfg names over r. It returns
// ErrNoStream when there is no such stream, or the error that stopped it.
func OpenReader(ctx context.Context, js jetstream.JetStream, cfg streams.StreamConfig, r Range) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return openReader(ctx, js, cfg.Name, events.SubjectPrefix+".>", r)
}

// openReader opens a Reader on stream's messages under filter, over r.
func openReader(ctx context.Context, js jetstream.JetStream, stream, filter string, r Range) (*Reader, error) {
	if r.FromSeq == 0 {
		r.FromSeq = 1
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 500
	}
	if r.IdleWait <= 0 {
		r.IdleWait = 2 * time.Second
	}
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	rd := &Reader{js: js, stream: stream, r: r, last: info.State.LastSeq}
	if info.State.Msgs == 0 || (r.Since.IsZero() && r.FromSeq > rd.last) {
		rd.done = true
		return rd, nil
	}
	oc := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    r.FromSeq,
		// The server removes a consumer a crashed reader left behind.
		InactiveThreshold: time.Minute,
	}
	if !r.Since.IsZero() {
		since := r.Since
		oc.DeliverPolicy, oc.OptStartSeq, oc.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &since
	}
	rd.cons, err = js.OrderedConsumer(ctx, stream, oc)
	if err != nil {
		return nil, fmt.Errorf("ordered consumer on %s: %w", stream, err)
	}
	rd.iter, err = rd.cons.Messages(jetstream.PullMaxMessages(r.BatchSize))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
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

// Last returns the last sequence of the range: the stream's last sequence
// when the Reader was opened.
func (rd *Reader) Last() uint64 { return rd.last }

// Estimate returns about how many messages the range holds: exact for a
// range of sequences on a stream nobody deletes from, an upper bound for
// a range of time.
func (rd *Reader) Estimate() uint64 { return rd.estimate }

// Next returns the next messages of the range, at most BatchSize, oldest
// first; io.EOF once the range is read; ctx's error when ctx ends first.
// A batch is returned as soon as no more messages are at hand.
func (rd *Reader) Next(ctx context.Context) ([]StreamMsg, error) {
	var batch []StreamMsg
	for !rd.done && len(batch) < rd.r.BatchSize {
		wait := rd.r.IdleWait
		if len(batch) > 0 {
			wait = 20 * time.Millisecond // what is buffered comes at once
		}
		m, err := rd.next(ctx, wait)
		switch {
		case errors.Is(err, errIdle) && len(batch) > 0:
			return batch, nil
		case errors.Is(err, errIdle):
			// Nothing came: the rest of the range may have been deleted
			// (limits retention). Done when nothing is pending.
			info, err := rd.cons.Info(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				continue // a reset in progress; ask again
			}
			if info.NumPending == 0 {
				rd.done = true
			}
			continue
		case err != nil:
			return nil, err
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read stream: %w", err)
		}
		seq := md.Sequence.Stream
		if seq > rd.last || (!rd.r.Until.IsZero() && md.Timestamp.After(rd.r.Until)) {
			rd.done = true
			break
		}
		batch = append(batch, StreamMsg{Seq: seq, Subject: m.Subject(), Data: m.Data(), Time: md.Timestamp})
		if seq == rd.last || md.NumPending == 0 {
			rd.done = true
		}
	}
	if len(batch) == 0 && rd.done {
		return nil, io.EOF
	}
	return batch, nil
}

var errIdle = errors.New("idle")

func (rd *Reader) next(ctx context.Context, wait time.Duration) (jetstream.Msg, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	m, err := rd.iter.Next(jetstream.NextContext(wctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, errIdle
		}
		return nil, fmt.Errorf("read stream: %w", err)
	}
	return m, nil
}

// Close stops reading and deletes the ordered consumer from the server.
func (rd *Reader) Close(ctx context.Context) {
	if rd.iter == nil {
		return
	}
	rd.iter.Stop()
	if ci := rd.cons.CachedInfo(); ci != nil {
		_ = rd.js.DeleteConsumer(ctx, rd.stream, ci.Name) // else InactiveThreshold removes it
	}
}
