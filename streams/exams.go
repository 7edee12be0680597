package streams

import (
	"errors"
	"fmt"
	"time"
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
