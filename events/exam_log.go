package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of ExamStreamConfig, named once: the binary's settings use them too.
const (
	DefaultExamStreamName    = "EXAMS"
	DefaultExamTimerStream   = "EXAM_TIMERS"
	DefaultExamTimerMaxBytes = int64(1 << 30)
	DefaultExamWriter        = "exam-writer"
	DefaultExamFinalizer     = "exam-finalizer"
	DefaultExamMaxAckPending = 20000
	DefaultFinalizerAckWait  = 30 * time.Second
)

// Headers of a JetStream message schedule (server 2.12+).
const (
	examScheduleHeader       = "Nats-Schedule"
	examScheduleTargetHeader = "Nats-Schedule-Target"
)

// ExamStreamConfig sizes the two exams streams and their consumers:
//
//   - EXAMS holds the session events (subjects quizstream.exams.>). It is
//     the system of record of sessions, kept like the attempts stream:
//     limits retention, DiscardNew, file storage.
//   - EXAM_TIMERS holds the timers (subjects quizstream.examtimers.>): a
//     JetStream message schedule per session, "@at" its deadline plus
//     grace, which fires a message the finalizer consumes. The server
//     refuses message schedules on a DiscardNew stream, so the timers have
//     a stream of their own, DiscardOld, which holds nothing but timers:
//     a full timer stream drops its oldest (fired) timers, never an event.
type ExamStreamConfig struct {
	// Name of the events stream. Defaults to "EXAMS".
	Name string
	// TimerName is the timers stream. Defaults to "EXAM_TIMERS".
	TimerName string
	// Replicas of both streams and consumers: 1 (with a server syncing
	// every write) or 3. Defaults to 1.
	Replicas int
	// Duplicates is the duplicate window of the events stream. Defaults to 2 minutes.
	Duplicates time.Duration
	// MaxAge bounds how long events and timers are kept; it must exceed the
	// longest time limit plus grace, or a timer expires before it fires.
	// Defaults to DefaultMaxAge (7 days), as the attempts stream.
	MaxAge time.Duration
	// MaxBytes bounds the events stream; past it starts, saves and submits
	// answer 503. Defaults to 10 GiB.
	MaxBytes int64
	// TimerMaxBytes bounds the timers stream. Defaults to 1 GiB (about
	// three million timers).
	TimerMaxBytes int64
	// Writer is the durable consumer that projects events into PostgreSQL.
	// Defaults to "exam-writer".
	Writer string
	// Finalizer is the durable consumer of fired timers. Defaults to "exam-finalizer".
	Finalizer string
	// AckWait is both consumers' ack wait. Defaults to 30s.
	AckWait time.Duration
	// MaxAckPending bounds each consumer's unacknowledged messages. Defaults to 20000.
	MaxAckPending int
}

// Validate fills defaults and reports the first field that is out of range.
func (c *ExamStreamConfig) Validate() error {
	if c.Name == "" {
		c.Name = DefaultExamStreamName
	}
	if c.TimerName == "" {
		c.TimerName = DefaultExamTimerStream
	}
	// The settings the events stream shares with the attempts stream
	// default as the attempts stream's do.
	shared := StreamConfig{Replicas: c.Replicas, Duplicates: c.Duplicates, MaxAge: c.MaxAge, MaxBytes: c.MaxBytes}
	shared.defaults()
	c.Replicas, c.Duplicates, c.MaxAge, c.MaxBytes = shared.Replicas, shared.Duplicates, shared.MaxAge, shared.MaxBytes
	if c.TimerMaxBytes <= 0 {
		c.TimerMaxBytes = DefaultExamTimerMaxBytes
	}
	if c.Writer == "" {
		c.Writer = DefaultExamWriter
	}
	if c.Finalizer == "" {
		c.Finalizer = DefaultExamFinalizer
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultFinalizerAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultExamMaxAckPending
	}
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("events: ExamStreamConfig.Replicas must be 1, 3 or 5, not %d", c.Replicas)
	case c.Duplicates > c.MaxAge:
		return errors.New("events: ExamStreamConfig.Duplicates must not exceed MaxAge")
	case c.Name == c.TimerName:
		return errors.New("events: ExamStreamConfig.Name and TimerName must differ")
	}
	return nil
}

// ApplyExams creates the exams streams and their consumers as cfg says, or
// updates them to it (idempotent): what `quizstream stream apply` does for
// exams. It returns the first error, after which the objects before it
// may have been changed.
func ApplyExams(ctx context.Context, js jetstream.JetStream, cfg ExamStreamConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The events stream and both consumers are built as the attempts
	// stream and its consumer are.
	sessions := StreamConfig{Name: cfg.Name, Replicas: cfg.Replicas, Duplicates: cfg.Duplicates, MaxAge: cfg.MaxAge,
		MaxBytes: cfg.MaxBytes, AckWait: cfg.AckWait, MaxAckPending: cfg.MaxAckPending}
	for _, sc := range []jetstream.StreamConfig{
		recordStream(sessions, "quizstream exam sessions: the system of record of starts, saves and finalizations", ExamSubjectPrefix),
		{
			Name:        cfg.TimerName,
			Description: "quizstream exam timers: one message schedule per session, and what they fire",
			Subjects:    []string{ExamTimerPrefix + ".>"},
			Retention:   jetstream.LimitsPolicy,
			// Message schedules need DiscardOld (the server refuses DiscardNew).
			Discard:            jetstream.DiscardOld,
			Storage:            jetstream.FileStorage,
			Replicas:           cfg.Replicas,
			MaxAge:             cfg.MaxAge,
			MaxBytes:           cfg.TimerMaxBytes,
			MaxMsgSize:         4 << 10, // a timer is a few hundred bytes
			AllowMsgSchedules:  true,
			AllowRollup:        true, // a schedule replaces the session's earlier one
			AllowAtomicPublish: true,
		},
	} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("apply stream %s: %w", sc.Name, err)
		}
	}
	for _, c := range []struct{ stream, durable, description, filter string }{
		{cfg.Name, cfg.Writer, "quizstream workers: exam sessions to PostgreSQL", ExamSubjectPrefix + ".>"},
		{cfg.TimerName, cfg.Finalizer, "quizstream workers: sessions finalized at their deadline", ExamTimerPrefix + ".due.*"},
	} {
		cc := durableConsumer(sessions, c.durable, c.description)
		cc.FilterSubject = c.filter
		if _, err := js.CreateOrUpdateConsumer(ctx, c.stream, cc); err != nil {
			return fmt.Errorf("apply consumer %s: %w", cc.Durable, err)
		}
	}
	return nil
}

// OpenExamLog returns an ExamLog on the exams streams and consumers cfg
// names as they are, changing nothing. It returns an error wrapping
// ErrNotApplied when one does not exist, an error naming the setting when
// one differs where a 202 or a deadline depends on it (storage,
// retention, discard, replicas, message schedules), or the error of a
// lookup.
func OpenExamLog(ctx context.Context, js jetstream.JetStream, cfg ExamStreamConfig) (*ExamLog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var streams [2]jetstream.Stream
	for i, name := range []string{cfg.Name, cfg.TimerName} {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("stream %s: %w", name, ErrNotApplied)
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		streams[i] = s
	}
	for _, c := range []struct{ stream, name string }{{cfg.Name, cfg.Writer}, {cfg.TimerName, cfg.Finalizer}} {
		_, err := js.Consumer(ctx, c.stream, c.name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("consumer %s: %w", c.name, ErrNotApplied)
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", c.name, err)
		}
	}
	ev, tm := streams[0].CachedInfo().Config, streams[1].CachedInfo().Config
	for _, m := range []struct {
		what      string
		found, is any
	}{
		{cfg.Name + " storage", ev.Storage, jetstream.FileStorage},
		{cfg.Name + " retention", ev.Retention, jetstream.LimitsPolicy},
		{cfg.Name + " discard", ev.Discard, jetstream.DiscardNew},
		{cfg.Name + " replicas", ev.Replicas, cfg.Replicas},
		{cfg.TimerName + " storage", tm.Storage, jetstream.FileStorage},
		{cfg.TimerName + " message schedules", tm.AllowMsgSchedules, true},
		{cfg.TimerName + " replicas", tm.Replicas, cfg.Replicas},
	} {
		if m.found != m.is {
			return nil, fmt.Errorf("exams streams: %s is %v, this process expects %v; apply the configuration", m.what, m.found, m.is)
		}
	}
	return &ExamLog{js: js, cfg: cfg, events: streams[0], timers: streams[1],
		eventsPub: newExamPublisher(js, streams[0]), timersPub: newExamPublisher(js, streams[1])}, nil
}

// ExamLog is the exams streams seen from the API and the workers: it reads
// sessions, appends their events under the compare-and-set, and arms their
// timers. It is safe for concurrent use.
type ExamLog struct {
	js     jetstream.JetStream
	cfg    ExamStreamConfig
	events jetstream.Stream
	timers jetstream.Stream
	// Publishes to each stream, batched when concurrent.
	eventsPub, timersPub *examPublisher
}

// NewExamLog applies cfg (ApplyExams) and returns an ExamLog on the
// streams, or the error that stopped it: for tests and tools that own
// their server. A service process uses OpenExamLog.
func NewExamLog(ctx context.Context, js jetstream.JetStream, cfg ExamStreamConfig) (*ExamLog, error) {
	if err := ApplyExams(ctx, js, cfg); err != nil {
		return nil, err
	}
	return OpenExamLog(ctx, js, cfg)
}

// Config returns the log's configuration, defaults filled.
func (l *ExamLog) Config() ExamStreamConfig { return l.cfg }

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
func (l *ExamLog) Append(ctx context.Context, e ExamEvent, expect uint64) (uint64, error) {
	data, err := EncodeExam(e)
	if err != nil {
		return 0, err
	}
	student, quiz, _ := e.ids()
	ack, err := l.eventsPub.publish(ctx, &nats.Msg{Subject: e.Subject(), Data: data, Header: nats.Header{
		jetstream.MsgIDHeader:          {e.msgID()},
		jetstream.ExpectedStreamHeader: {l.cfg.Name},
		// The compare-and-set, on all of the student's sessions of the quiz.
		jetstream.ExpectedLastSubjSeqHeader:     {strconv.FormatUint(expect, 10)},
		jetstream.ExpectedLastSubjSeqSubjHeader: {ExamQuizSubjects(student, quiz)},
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
func (l *ExamLog) Arm(ctx context.Context, d ExamDue) error {
	data, err := EncodeExamDue(d)
	if err != nil {
		return err
	}
	m := nats.NewMsg(examTimerSubject(d.SessionID))
	m.Data = data
	// RFC 3339 with nanoseconds: the server reads the fraction, where
	// jetstream.WithScheduleAt would round down to the second and fire early.
	m.Header.Set(examScheduleHeader, "@at "+d.DueAt.UTC().Format(time.RFC3339Nano))
	m.Header.Set(examScheduleTargetHeader, ExamDueSubject(d.SessionID))
	m.Header.Set(jetstream.ExpectedStreamHeader, l.cfg.TimerName)
	if _, err := l.timersPub.publish(ctx, m); err != nil {
		return fmt.Errorf("arm exam timer: %w", err)
	}
	return nil
}

// ExamMsg is one stored session event.
type ExamMsg struct {
	Seq   uint64
	Event ExamEvent
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
		if e, err := DecodeExamAt(m.Subject, m.Data); err == nil {
			out = append(out, ExamMsg{Seq: m.Sequence, Event: e})
		}
		seq = m.Sequence + 1
	}
	return out, nil
}

// maxSessionEvents bounds the events folded into one session: a start, a
// final and the saves (a few per question).
const maxSessionEvents = 4*MaxQuestions + 2

// Session returns one of a student's sessions folded from all its events
// in the stream, ErrNoSession when there is none (or it is another
// student's), or the error of the reads.
func (l *ExamLog) Session(ctx context.Context, student, session uuid.UUID) (*ExamSession, error) {
	return l.fold(ctx, ExamSessionSubjects(student, session))
}

// QuizSession is Session for a session whose quiz is known: its reads are
// of one literal subject, cheaper than Session's wildcard.
func (l *ExamLog) QuizSession(ctx context.Context, student, quiz, session uuid.UUID) (*ExamSession, error) {
	return l.fold(ctx, ExamSubject(student, quiz, session))
}

// fold returns the session whose events are on subject, folded, or
// ErrNoSession when they hold no start, or the error of the reads.
func (l *ExamLog) fold(ctx context.Context, subject string) (*ExamSession, error) {
	msgs, err := l.Events(ctx, subject, 0, maxSessionEvents)
	if err != nil {
		return nil, err
	}
	s := NewExamSession()
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
func (l *ExamLog) Refresh(ctx context.Context, s *ExamSession) (*ExamSession, error) {
	st := s.Started
	msgs, err := l.Events(ctx, ExamSubject(st.StudentID, st.QuizID, st.SessionID), s.LastSeq, maxSessionEvents)
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
func (l *ExamLog) Latest(ctx context.Context, student, quiz uuid.UUID) (*ExamSession, uint64, error) {
	m, err := l.events.GetLastMsgForSubject(ctx, ExamQuizSubjects(student, quiz))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read latest exam event: %w", err)
	}
	e, err := DecodeExamAt(m.Subject, m.Data)
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
func (l *ExamLog) Finalize(ctx context.Context, s *ExamSession, by string, at time.Time) (ExamFinalized, *ExamSession, error) {
	for {
		if s.Final != nil {
			return *s.Final, s, nil
		}
		f := s.Finalization(by, at)
		seq, err := l.Append(ctx, ExamEvent{Finalized: &f}, s.LastSeq)
		switch {
		case err == nil:
			s = s.Clone()
			s.Apply(ExamEvent{Finalized: &f}, seq)
			return f, s, nil
		case !errors.Is(err, ErrExamConflict):
			return ExamFinalized{}, s, err
		}
		if s, err = l.Refresh(ctx, s); err != nil {
			return ExamFinalized{}, s, err
		}
		if err := ctx.Err(); err != nil {
			return ExamFinalized{}, s, err
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
