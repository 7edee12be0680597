package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
)

// Headers of a JetStream message schedule (server 2.12+).
const (
	examScheduleHeader       = "Nats-Schedule"
	examScheduleTargetHeader = "Nats-Schedule-Target"
)

// OpenExamLog returns an ExamLog on the exams streams and consumers cfg
// names as they are, changing nothing. It returns an error wrapping
// streams.ErrNotApplied when one does not exist, an error naming the
// settings that differ where a 202 or a deadline depends on them (the
// exams family's fatal settings: streams.Check), or the error of a lookup.
func OpenExamLog(ctx context.Context, js jetstream.JetStream, cfg streams.ExamStreamConfig) (*ExamLog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := streams.Require(ctx, js, streams.Exams(cfg)); err != nil {
		return nil, err
	}
	var (
		found [2]jetstream.Stream
		err   error
	)
	for i, name := range []string{cfg.Name, cfg.TimerName} {
		if found[i], err = js.Stream(ctx, name); err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	l := &ExamLog{js: js, cfg: cfg, events: found[0], timers: found[1]}
	// A start surge publishes a start and a timer per student at once.
	bc := BatchConfig{MinMessages: 4}
	if l.eventsPub, err = NewPublisher(ctx, js, cfg.Name, "exams", bc, nil); err != nil {
		return nil, err
	}
	if l.timersPub, err = NewPublisher(ctx, js, cfg.TimerName, "exams", bc, nil); err != nil {
		l.eventsPub.Close()
		return nil, err
	}
	return l, nil
}

// ExamLog is the exams streams seen from the API and the workers: it reads
// sessions, appends their events under the compare-and-set, and arms their
// timers. It is safe for concurrent use.
type ExamLog struct {
	js     jetstream.JetStream
	cfg    streams.ExamStreamConfig
	events jetstream.Stream
	timers jetstream.Stream
	// Publishes to each stream, batched when concurrent.
	eventsPub, timersPub *Publisher
}

// NewExamLog applies cfg (streams.Apply of the exams family, forced) and returns an ExamLog on the
// streams, or the error that stopped it: for tests and tools that own
// their server. A service process uses OpenExamLog.
func NewExamLog(ctx context.Context, js jetstream.JetStream, cfg streams.ExamStreamConfig) (*ExamLog, error) {
	if _, err := streams.Apply(ctx, js, true, streams.Exams(cfg)); err != nil {
		return nil, err
	}
	return OpenExamLog(ctx, js, cfg)
}

// Close stops the log's publishers, once every call of it has returned.
func (l *ExamLog) Close() {
	l.eventsPub.Close()
	l.timersPub.Close()
}

// Collectors returns the metrics of the log's publishers, to register once.
func (l *ExamLog) Collectors() []prometheus.Collector {
	return []prometheus.Collector{l.eventsPub.Collector(), l.timersPub.Collector()}
}

// Config returns the log's configuration, defaults filled.
func (l *ExamLog) Config() streams.ExamStreamConfig { return l.cfg }

// ErrExamConflict means an Append lost its compare-and-set: the student's
// sessions of the quiz changed since the publisher read them. Read again
// (Refresh, Latest) and decide again.
var ErrExamConflict = errors.New("exam session changed meanwhile")

// ErrNoSession means the log holds no event of the session asked for.
var ErrNoSession = errors.New("exam session not in the event log")

// Append publishes e on its session's subject, provided that the last
// event on the student's subjects of the quiz is still at sequence expect
// (0: there is none), and returns its sequence once the stream holds it.
// It returns ErrExamConflict when that is no longer so, or when the stream
// already holds an event with e's message id (a retry): either way the
// caller reads the session again. Any other error means the outcome is
// unknown.
func (l *ExamLog) Append(ctx context.Context, e events.ExamEvent, expect uint64) (uint64, error) {
	data, err := events.EncodeExam(e)
	if err != nil {
		return 0, err
	}
	student, quiz, _ := e.IDs()
	ack, err := l.eventsPub.Publish(ctx, &nats.Msg{Subject: e.Subject(), Data: data, Header: nats.Header{
		jetstream.MsgIDHeader:          {e.MsgID()},
		jetstream.ExpectedStreamHeader: {l.cfg.Name},
		// The compare-and-set, on all of the student's sessions of the quiz.
		jetstream.ExpectedLastSubjSeqHeader:     {strconv.FormatUint(expect, 10)},
		jetstream.ExpectedLastSubjSeqSubjHeader: {events.ExamQuizSubjects(student, quiz)},
	}})
	switch {
	case isExamConflict(err):
		return 0, ErrExamConflict
	case err != nil:
		return 0, fmt.Errorf("publish exam event: %w", err)
	case ack.Duplicate:
		return 0, ErrExamConflict
	}
	return ack.Sequence, nil
}

// isExamConflict reports whether a publish lost its compare-and-set: the
// last sequence differs, or (clustered streams) another publish on the
// same subjects is being applied.
func isExamConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Arm schedules d's timer: at d.DueAt the stream fires it on
// ExamDueSubject, to the finalizer, even if every process (the server's
// own included) restarted meanwhile. A later Arm of the same session
// replaces an earlier one that has not fired. It returns once the timer
// is durable, or the error.
func (l *ExamLog) Arm(ctx context.Context, d events.ExamDue) error {
	data, err := events.EncodeExamDue(d)
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.ExamTimerSubject(d.SessionID))
	m.Data = data
	// RFC 3339 with nanoseconds: the server reads the fraction, where
	// jetstream.WithScheduleAt would round down to the second and fire early.
	m.Header.Set(examScheduleHeader, "@at "+d.DueAt.UTC().Format(time.RFC3339Nano))
	m.Header.Set(examScheduleTargetHeader, events.ExamDueSubject(d.SessionID))
	m.Header.Set(jetstream.ExpectedStreamHeader, l.cfg.TimerName)
	if _, err := l.timersPub.Publish(ctx, m); err != nil {
		return fmt.Errorf("arm exam timer: %w", err)
	}
	return nil
}

// ExamMsg is one stored session event.
type ExamMsg struct {
	Seq   uint64
	Event events.ExamEvent
}

// Events returns up to max of the session events on subject (one of the
// Exam*Subjects) with a sequence above after, oldest first. Undecodable
// events are skipped.
func (l *ExamLog) Events(ctx context.Context, subject string, after uint64, max int) ([]ExamMsg, error) {
	var out []ExamMsg
	for seq := after + 1; len(out) < max; {
		m, err := l.events.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read exam events: %w", err)
		}
		if e, err := events.DecodeExamAt(m.Subject, m.Data); err == nil {
			out = append(out, ExamMsg{Seq: m.Sequence, Event: e})
		}
		seq = m.Sequence + 1
	}
	return out, nil
}

// maxSessionEvents bounds the events folded into one session: a start, a
// final and the saves (a few per question).
const maxSessionEvents = 4*events.MaxQuestions + 2

// Session returns one of a student's sessions folded from all its events
// in the stream, ErrNoSession when there is none (or it is another
// student's), or the error of the reads.
func (l *ExamLog) Session(ctx context.Context, student, session uuid.UUID) (*events.ExamSession, error) {
	return l.fold(ctx, events.ExamSessionSubjects(student, session))
}

// QuizSession is Session for a session whose quiz is known: its reads are
// of one literal subject, cheaper than Session's wildcard.
func (l *ExamLog) QuizSession(ctx context.Context, student, quiz, session uuid.UUID) (*events.ExamSession, error) {
	return l.fold(ctx, events.ExamSubject(student, quiz, session))
}

// fold returns the session whose events are on subject, folded, or
// ErrNoSession when they hold no start, or the error of the reads.
func (l *ExamLog) fold(ctx context.Context, subject string) (*events.ExamSession, error) {
	msgs, err := l.Events(ctx, subject, 0, maxSessionEvents)
	if err != nil {
		return nil, err
	}
	s := events.NewExamSession()
	for _, m := range msgs {
		s.Apply(m.Event, m.Seq)
	}
	if s.Started == nil {
		return nil, ErrNoSession
	}
	return s, nil
}

// Refresh returns s with the events stored after it was read folded in (s
// itself is not changed), or the error of the reads.
func (l *ExamLog) Refresh(ctx context.Context, s *events.ExamSession) (*events.ExamSession, error) {
	st := s.Started
	msgs, err := l.Events(ctx, events.ExamSubject(st.StudentID, st.QuizID, st.SessionID), s.LastSeq, maxSessionEvents)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return s, nil
	}
	s = s.Clone()
	for _, m := range msgs {
		s.Apply(m.Event, m.Seq)
	}
	return s, nil
}

// Latest returns the student's latest session of the quiz (nil when there
// is none) and the sequence of the last event on the student's subjects of
// the quiz: what an Append of a new session expects.
func (l *ExamLog) Latest(ctx context.Context, student, quiz uuid.UUID) (*events.ExamSession, uint64, error) {
	m, err := l.events.GetLastMsgForSubject(ctx, events.ExamQuizSubjects(student, quiz))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read latest exam event: %w", err)
	}
	e, err := events.DecodeExamAt(m.Subject, m.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("read latest exam event at seq %d: %w", m.Sequence, err)
	}
	s, err := l.QuizSession(ctx, student, quiz, e.SessionID())
	if err != nil {
		return nil, 0, err
	}
	return s, m.Sequence, nil
}

// Finalize ends s as by says (at: when the submit reached the API, or the
// deadline) unless it has ended already, and returns its ExamFinalized and
// the session as it now is. A save stored meanwhile makes it read the
// session again and grade that: the finalization is always of the
// session's last saves. It returns ctx's error, or the error of a read or
// a publish (the outcome is then unknown; finalizing again settles it).
func (l *ExamLog) Finalize(ctx context.Context, s *events.ExamSession, by string, at time.Time) (events.ExamFinalized, *events.ExamSession, error) {
	for {
		if s.Final != nil {
			return *s.Final, s, nil
		}
		f := s.Finalization(by, at)
		seq, err := l.Append(ctx, events.ExamEvent{Finalized: &f}, s.LastSeq)
		switch {
		case err == nil:
			s = s.Clone()
			s.Apply(events.ExamEvent{Finalized: &f}, seq)
			return f, s, nil
		case !errors.Is(err, ErrExamConflict):
			return events.ExamFinalized{}, s, err
		}
		if s, err = l.Refresh(ctx, s); err != nil {
			return events.ExamFinalized{}, s, err
		}
		if err := ctx.Err(); err != nil {
			return events.ExamFinalized{}, s, err
		}
	}
}

// AckFloor returns the stream sequence at and below which the exam writers
// have stored every event, or the error of the lookup.
func (l *ExamLog) AckFloor(ctx context.Context) (uint64, error) {
	c, err := l.js.Consumer(ctx, l.cfg.Name, l.cfg.Writer)
	if err != nil {
		return 0, fmt.Errorf("exam ack floor: consumer %s: %w", l.cfg.Writer, err)
	}
	return c.CachedInfo().AckFloor.Stream, nil
}

// Ping reports whether both exams streams answer.
func (l *ExamLog) Ping(ctx context.Context) error {
	for _, s := range []jetstream.Stream{l.events, l.timers} {
		if _, err := s.Info(ctx); err != nil {
			return fmt.Errorf("stream info: %w", err)
		}
	}
	return nil
}

// WriterConsumer returns the durable consumer the exam writers share.
func (l *ExamLog) WriterConsumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := l.js.Consumer(ctx, l.cfg.Name, l.cfg.Writer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", l.cfg.Writer, err)
	}
	return c, nil
}

// FinalizerConsumer returns the durable consumer of fired timers.
func (l *ExamLog) FinalizerConsumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := l.js.Consumer(ctx, l.cfg.TimerName, l.cfg.Finalizer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", l.cfg.Finalizer, err)
	}
	return c, nil
}
