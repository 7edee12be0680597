package eventlog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
)

// CheckLog is the code-checks stream (CHECKS) seen from the API and the
// checkers: it publishes requests, starts and verdicts through one
// Publisher, each under its guards, and reads checks back. It is safe for
// concurrent use.
type CheckLog struct {
	js     jetstream.JetStream
	cfg    streams.CheckStreamConfig
	stream jetstream.Stream
	pub    *Publisher
}

// OpenCheckLog returns a CheckLog on the stream and consumers cfg names as
// they are, changing nothing: an error wrapping streams.ErrNotApplied when
// one does not exist, an error naming a fatal difference, or the error of
// a lookup.
func OpenCheckLog(ctx context.Context, js jetstream.JetStream, cfg streams.CheckStreamConfig) (*CheckLog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := streams.Require(ctx, js, streams.Checks(cfg)); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	l := &CheckLog{js: js, cfg: cfg, stream: s}
	if l.pub, err = NewPublisher(ctx, js, cfg.Name, "checks", BatchConfig{}, nil); err != nil {
		return nil, err
	}
	return l, nil
}

// NewCheckLog applies cfg (streams.Apply of the checks family, forced) and
// returns a CheckLog on it: for tests and tools that own their server.
func NewCheckLog(ctx context.Context, js jetstream.JetStream, cfg streams.CheckStreamConfig) (*CheckLog, error) {
	if _, err := streams.Apply(ctx, js, true, streams.Checks(cfg)); err != nil {
		return nil, err
	}
	return OpenCheckLog(ctx, js, cfg)
}

// Close stops the log's publisher, once every call of it has returned.
func (l *CheckLog) Close() { l.pub.Close() }

// Collectors returns the metrics of the log's publisher, to register once.
func (l *CheckLog) Collectors() []prometheus.Collector {
	return []prometheus.Collector{l.pub.Collector()}
}

// Config returns the log's configuration, defaults filled.
func (l *CheckLog) Config() streams.CheckStreamConfig { return l.cfg }

// RequestPublished is the outcome of Request.
type RequestPublished struct {
	// Request is the request the stream holds: the one published, or for
	// a duplicate the original, which may differ from the one offered.
	Request events.CodeCheckRequested
	Seq     uint64
	// Duplicate is true when the stream already held this check.
	Duplicate bool
}

// Request appends a check request and returns once the stream holds it.
// The stream keeps one request per check id (its subject's guard, for
// ever): when it holds one already, Request returns that original with
// Duplicate set. Any error means the outcome is unknown.
func (l *CheckLog) Request(ctx context.Context, r events.CodeCheckRequested) (RequestPublished, error) {
	e := events.CheckEvent{Requested: &r}
	ack, err := l.publish(ctx, e, true)
	var orig *jetstream.RawStreamMsg
	switch {
	case err == nil && !ack.Duplicate:
		return RequestPublished{Request: r, Seq: ack.Sequence}, nil
	case err == nil:
		orig, err = l.stream.GetMsg(ctx, ack.Sequence)
	case isWrongLastSequence(err):
		orig, err = l.stream.GetLastMsgForSubject(ctx, e.Subject())
	default:
		return RequestPublished{}, fmt.Errorf("publish check request: %w", err)
	}
	if err != nil {
		return RequestPublished{}, fmt.Errorf("read original check request: %w", err)
	}
	stored, err := events.DecodeCheckAt(orig.Subject, orig.Data)
	if err != nil || stored.Requested == nil {
		return RequestPublished{}, fmt.Errorf("read original check request at seq %d: %v", orig.Sequence, err)
	}
	return RequestPublished{Request: *stored.Requested, Seq: orig.Sequence, Duplicate: true}, nil
}

// Start records that a checker took a check. A start per delivery: a
// retry of the same delivery's start is a duplicate.
func (l *CheckLog) Start(ctx context.Context, s events.CodeCheckStarted) error {
	_, err := l.publish(ctx, events.CheckEvent{Started: &s}, false)
	return err
}

// Complete appends a check's verdict and returns once the stream holds
// it, or (done set) when the stream holds a verdict of the check already:
// its subject's guard refuses a second one for ever. Any other error
// means the outcome is unknown.
func (l *CheckLog) Complete(ctx context.Context, c events.CodeCheckCompleted) (already bool, err error) {
	ack, err := l.publish(ctx, events.CheckEvent{Completed: &c}, true)
	switch {
	case err == nil:
		return ack.Duplicate, nil
	case isWrongLastSequence(err):
		return true, nil
	}
	return false, fmt.Errorf("publish check verdict: %w", err)
}

func (l *CheckLog) publish(ctx context.Context, e events.CheckEvent, once bool) (*jetstream.PubAck, error) {
	data, err := events.EncodeCheck(e)
	if err != nil {
		return nil, err
	}
	h := nats.Header{
		jetstream.MsgIDHeader:          {e.MsgID()},
		jetstream.ExpectedStreamHeader: {l.cfg.Name},
	}
	if once {
		h[jetstream.ExpectedLastSubjSeqHeader] = []string{"0"}
	}
	return l.pub.Publish(ctx, &nats.Msg{Subject: e.Subject(), Data: data, Header: h})
}

// ErrNoCheck means the log holds no request of the check asked for.
var ErrNoCheck = errors.New("check not in the event log")

// CheckState is one check as the stream holds it: what every event of it
// carries of its request (Ref), the request itself when read, its latest
// start and its verdict, and the highest sequence read.
type CheckState struct {
	Ref       events.CheckRef
	Requested events.CodeCheckRequested
	Started   *events.CodeCheckStarted
	Completed *events.CodeCheckCompleted
	Seq       uint64
}

// Status is the check's status as the stream says.
func (s *CheckState) Status() string {
	switch {
	case s.Completed != nil:
		return s.Completed.Status
	case s.Started != nil:
		return events.CheckRunning
	}
	return events.CheckQueued
}

func (s *CheckState) fold(e events.CheckEvent, seq uint64) {
	s.Ref = e.Ref()
	switch {
	case e.Requested != nil:
		s.Requested = *e.Requested
	case e.Started != nil:
		s.Started = e.Started
	case e.Completed != nil:
		s.Completed = e.Completed
	}
	s.Seq = max(s.Seq, seq)
}

// Check returns one check of a student folded from its subjects, or ErrNoCheck.
func (l *CheckLog) Check(ctx context.Context, student, check uuid.UUID) (*CheckState, error) {
	st := &CheckState{}
	for _, kind := range []string{"requested", "started", "completed"} {
		m, err := l.stream.GetLastMsgForSubject(ctx, events.CheckSubject(student, check, kind))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if kind == "requested" {
				return nil, ErrNoCheck
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read check: %w", err)
		}
		e, err := events.DecodeCheckAt(m.Subject, m.Data)
		if err != nil {
			if kind == "requested" {
				return nil, fmt.Errorf("%w: seq %d: %w", ErrNoCheck, m.Sequence, err)
			}
			continue
		}
		st.fold(e, m.Sequence)
	}
	return st, nil
}

// Completed reports whether the stream holds a verdict of the check.
func (l *CheckLog) Completed(ctx context.Context, student, check uuid.UUID) (bool, error) {
	_, err := l.stream.GetLastMsgForSubject(ctx, events.CheckSubject(student, check, "completed"))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return err == nil, err
}

// StudentChecks returns the student's checks with an event above after,
// each folded from its events above after (Ref set from any of them; the
// request may be at or below after), reading at most max events; more
// reports that there were more.
func (l *CheckLog) StudentChecks(ctx context.Context, student uuid.UUID, after uint64, max int) (out []*CheckState, more bool, err error) {
	byID := map[uuid.UUID]*CheckState{}
	subject := events.StudentCheckSubjects(student)
	for seq, n := after+1, 0; ; n++ {
		if n == max {
			return nil, true, nil
		}
		m, err := l.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read student checks: %w", err)
		}
		seq = m.Sequence + 1
		e, err := events.DecodeCheckAt(m.Subject, m.Data)
		if err != nil {
			continue
		}
		id := e.Ref().CheckID
		st := byID[id]
		if st == nil {
			st = &CheckState{}
			byID[id] = st
		}
		st.fold(e, m.Sequence)
	}
	for _, st := range byID {
		out = append(out, st)
	}
	return out, false, nil
}

// AckFloor returns the sequence at and below which the check writers have
// stored every event.
func (l *CheckLog) AckFloor(ctx context.Context) (uint64, error) {
	c, err := l.js.Consumer(ctx, l.cfg.Name, l.cfg.Writer)
	if err != nil {
		return 0, fmt.Errorf("checks ack floor: %w", err)
	}
	return c.CachedInfo().AckFloor.Stream, nil
}

// WriterConsumer returns the check writers' durable consumer.
func (l *CheckLog) WriterConsumer(ctx context.Context) (jetstream.Consumer, error) {
	return l.js.Consumer(ctx, l.cfg.Name, l.cfg.Writer)
}

// CheckerConsumer returns the checkers' durable consumer of requests.
func (l *CheckLog) CheckerConsumer(ctx context.Context) (jetstream.Consumer, error) {
	return l.js.Consumer(ctx, l.cfg.Name, l.cfg.Checker)
}

// Backlog returns the requests no checker has acknowledged (queued or
// being checked) and the age of the oldest of them (0 when none).
func (l *CheckLog) Backlog(ctx context.Context) (int, time.Duration, error) {
	c, err := l.CheckerConsumer(ctx)
	if err != nil {
		return 0, 0, err
	}
	info := c.CachedInfo()
	n := int(min(info.NumPending, math.MaxInt32)) + info.NumAckPending //nolint:gosec // G115: bounded just before
	if n == 0 {
		return 0, 0, nil
	}
	m, err := l.stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(events.CheckRequestSubjects))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return n, 0, nil
	}
	if err != nil {
		return n, 0, err
	}
	return n, time.Since(m.Time), nil
}
