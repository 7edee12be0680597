package streams

import (
	"errors"
	"fmt"
	"time"

	"github.com/quizstream/quizstream/events"
)

// Defaults of CheckStreamConfig, named once: the binary's settings use them too.
const (
	DefaultCheckStreamName      = "CHECKS"
	DefaultCheckWriter          = "check-writer"
	DefaultChecker              = "checker"
	DefaultCheckMaxBytes        = int64(2 << 30)
	DefaultCheckMaxAckPending   = 20000
	DefaultCheckerAckWait       = time.Minute
	DefaultCheckerMaxAckPending = 1000
)

// CheckStreamConfig sizes the code-checks family (docs/checker.md): the
// CHECKS stream (subjects quizstream.checks.>), the system of record of
// checks, kept like the attempts stream (limits retention, DiscardNew,
// file storage); the writers' consumer of every event, and the checkers'
// consumer of the requests.
type CheckStreamConfig struct {
	// Name of the stream. Defaults to "CHECKS".
	Name string
	// Replicas of the stream and its consumers: 1 (with a server syncing
	// every write), 3 or 5. Defaults to the attempts stream's.
	Replicas int
	// Duplicates is the duplicate window. Defaults to 2 minutes.
	Duplicates time.Duration
	// MaxAge bounds how long events are kept; a request must be checked
	// within it. Defaults to 7 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream (a request holds its source, up to 64
	// KiB); past it check requests answer 503. Defaults to 2 GiB.
	MaxBytes int64
	// Writer is the durable consumer that projects checks into
	// PostgreSQL. Defaults to "check-writer".
	Writer string
	// Checker is the durable consumer of requests that checkers share.
	// Defaults to "checker".
	Checker string
	// AckWait is the writers' ack wait. Defaults to 30s.
	AckWait time.Duration
	// CheckerAckWait is the checkers' ack wait: a checker holds a request
	// while it is checked (heartbeats every half of it); one that dies
	// leaves it to be redelivered after it. Defaults to 1m.
	CheckerAckWait time.Duration
	// MaxAckPending bounds the writers' unacknowledged events. Defaults to 20000.
	MaxAckPending int
	// CheckerMaxAckPending bounds the requests held by checkers at once.
	// Defaults to 1000.
	CheckerMaxAckPending int
}

// Validate fills defaults and reports the first field that is out of range.
func (c *CheckStreamConfig) Validate() error {
	if c.Name == "" {
		c.Name = DefaultCheckStreamName
	}
	shared := StreamConfig{Replicas: c.Replicas, Duplicates: c.Duplicates, MaxAge: c.MaxAge, MaxBytes: c.MaxBytes}
	shared.defaults()
	c.Replicas, c.Duplicates, c.MaxAge = shared.Replicas, shared.Duplicates, shared.MaxAge
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultCheckMaxBytes
	}
	if c.Writer == "" {
		c.Writer = DefaultCheckWriter
	}
	if c.Checker == "" {
		c.Checker = DefaultChecker
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.CheckerAckWait <= 0 {
		c.CheckerAckWait = DefaultCheckerAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultCheckMaxAckPending
	}
	if c.CheckerMaxAckPending <= 0 {
		c.CheckerMaxAckPending = DefaultCheckerMaxAckPending
	}
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("events: CheckStreamConfig.Replicas must be 1, 3 or 5, not %d", c.Replicas)
	case c.Duplicates > c.MaxAge:
		return errors.New("events: CheckStreamConfig.Duplicates must not exceed MaxAge")
	case c.Writer == c.Checker:
		return errors.New("events: CheckStreamConfig.Writer and Checker must differ")
	}
	return nil
}

// Checks declares the code-checks family (CheckStreamConfig).
func Checks(cfg CheckStreamConfig) Family {
	err := cfg.Validate()
	record := StreamConfig{Name: cfg.Name, Replicas: cfg.Replicas, Duplicates: cfg.Duplicates, MaxAge: cfg.MaxAge,
		MaxBytes: cfg.MaxBytes, AckWait: cfg.AckWait, MaxAckPending: cfg.MaxAckPending}
	writer := durableConsumer(record, cfg.Writer, "quizstream workers: code checks to PostgreSQL")
	writer.FilterSubject = events.CheckSubjectPrefix + ".>"
	checker := durableConsumer(StreamConfig{Replicas: cfg.Replicas, AckWait: cfg.CheckerAckWait, MaxAckPending: cfg.CheckerMaxAckPending},
		cfg.Checker, "quizstream checkers: check requests to the code checker")
	checker.FilterSubject = events.CheckRequestSubjects
	return Family{
		Name: "checks",
		Streams: []Stream{{Config: recordStream(record, "quizstream code checks: the system of record of check requests, starts and verdicts",
			events.CheckSubjectPrefix), Fatal: recordFatal}},
		Consumers: []Consumer{
			{Stream: cfg.Name, Config: writer, Fatal: consumerFatal},
			{Stream: cfg.Name, Config: checker, Fatal: consumerFatal},
		},
		err: err,
	}
}
