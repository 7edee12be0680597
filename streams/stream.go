// Package streams administers quizstream's JetStream objects: the settings
// of every event family's streams and consumers, their apply, check and
// status, the dead letters, the content bucket, and the streams' metrics.
// Stream settings have one owner: an operator applies them (`quizstream
// stream apply`); api and worker processes only check what they find.
package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/quizstream/quizstream/events"
)

// Defaults of StreamConfig, named once: the binary's settings use them too.
// They are sized for 10 million attempts a month (docs/operations.md,
// "Sizing"): a week of attempts (about 2.3 million, 4 GB) with room for
// exam peaks of 2.5 times the average week.
const (
	DefaultStreamName    = "ATTEMPTS"
	DefaultReplicas      = 1
	DefaultDuplicates    = 2 * time.Minute
	DefaultMaxAge        = 7 * 24 * time.Hour
	DefaultMaxBytes      = int64(10 << 30)
	DefaultMaxMsgs       = int64(6_000_000)
	DefaultConsumer      = "attempt-writer"
	DefaultAckWait       = 30 * time.Second
	DefaultMaxAckPending = 20000
	// DefaultDeadLetterMaxBytes bounds the dead-letter stream.
	DefaultDeadLetterMaxBytes = int64(1 << 30)
)

// maxMsgSize bounds one message of the attempts stream.
const maxMsgSize = 1 << 20

// StreamConfig sizes the attempts stream and its durable consumer.
type StreamConfig struct {
	// Name of the stream. Defaults to "ATTEMPTS".
	Name string
	// Replicas is 1 (with a server syncing every write) or 3 (a quorum
	// holds each write). Defaults to 1.
	Replicas int
	// Duplicates is the window in which JetStream drops a re-published
	// Nats-Msg-Id. Defaults to 2 minutes.
	Duplicates time.Duration
	// MaxAge bounds how long an event is kept: replay holds within it, and
	// so does the per-attempt subject guard against a late retry (beyond
	// it the API recognises a retry by the attempt's row in PostgreSQL).
	// It also bounds the server's memory: about 300 bytes per attempt
	// held, for its subject. Defaults to 7 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; past it publishes fail (DiscardNew)
	// and the API answers 503. Size it so that MaxAge removes events before
	// it is reached. Defaults to 10 GiB.
	MaxBytes int64
	// MaxMsgs bounds the events held, and with them the subjects the
	// server keeps in memory (one per attempt); past it publishes fail as
	// past MaxBytes. Defaults to 6,000,000 (about 10 GiB of attempts).
	MaxMsgs int64
	// DeadLetterMaxBytes bounds the dead-letter stream. Defaults to 1 GiB.
	DeadLetterMaxBytes int64
	// Consumer is the durable consumer shared by all workers. Defaults to "attempt-writer".
	Consumer string
	// AckWait is how long a delivered message may stay unacknowledged before
	// redelivery; longer than the slowest batch. Defaults to 30s.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged messages across all workers; at
	// least workers x batch size. Defaults to 20000.
	MaxAckPending int
	// ReadModelMaxBytes bounds the read model's bucket (ReadModel); past
	// it the least recently written students drop out (and fall back to
	// PostgreSQL). Defaults to 8 GiB.
	ReadModelMaxBytes int64
	// ReadModelTTL is how long a student's value lives unwritten. Defaults
	// to 120 days (a term).
	ReadModelTTL time.Duration
	// ReadModel turns the student read model on: API instances read
	// students from it, workers fold into it, and the attempts family
	// declares its consumer (ReadModelConsumer). Off, both use PostgreSQL
	// alone, and no consumer waits unread. The binary's default is on.
	ReadModel bool
}

func (c *StreamConfig) defaults() {
	if c.Name == "" {
		c.Name = DefaultStreamName
	}
	if c.Replicas <= 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Duplicates <= 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxMsgs <= 0 {
		c.MaxMsgs = DefaultMaxMsgs
	}
	if c.DeadLetterMaxBytes <= 0 {
		c.DeadLetterMaxBytes = DefaultDeadLetterMaxBytes
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumer
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.ReadModelMaxBytes <= 0 {
		c.ReadModelMaxBytes = DefaultReadModelMaxBytes
	}
	if c.ReadModelTTL <= 0 {
		c.ReadModelTTL = DefaultReadModelTTL
	}
}

// Validate fills defaults and reports the first field that is out of range.
func (c *StreamConfig) Validate() error {
	c.defaults()
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("events: StreamConfig.Replicas must be 1, 3 or 5, not %d", c.Replicas)
	case c.Duplicates > c.MaxAge:
		return errors.New("events: StreamConfig.Duplicates must not exceed MaxAge")
	}
	return nil
}

// DeadLetterStream returns the name of the dead-letter stream that goes
// with the attempts stream cfg names.
func (c StreamConfig) DeadLetterStream() string {
	name := c.Name
	if name == "" {
		name = DefaultStreamName
	}
	return name + "_DLQ"
}

// streamConfig is the attempts stream as cfg (validated) describes it.
func streamConfig(cfg StreamConfig) jetstream.StreamConfig {
	sc := recordStream(cfg, "quizstream attempts: the system of record for writes", events.SubjectPrefix)
	sc.MaxMsgs = cfg.MaxMsgs
	return sc
}

// recordStream is a stream of events that is a system of record (the
// attempts stream, the exams events stream), named and sized as cfg
// (validated) says, on the subjects below prefix.
func recordStream(cfg StreamConfig, description, prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: description,
		Subjects:    []string{prefix + ".>"},
		// Limits retention: the stream is the log replays read, so acking a
		// message must never delete it.
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardNew,
		Storage:    jetstream.FileStorage,
		Replicas:   cfg.Replicas,
		Duplicates: cfg.Duplicates,
		MaxAge:     cfg.MaxAge,
		MaxBytes:   cfg.MaxBytes,
		MaxMsgSize: maxMsgSize,
		// Lets a family's eventlog.Publisher publish concurrent events in
		// one atomic batch: a few syncs per batch rather than one per
		// message. Servers before 2.12 ignore it, and a Publisher then
		// publishes one message at a time.
		AllowAtomicPublish: true,
	}
}

// consumerConfig is the workers' durable consumer as cfg describes it.
func consumerConfig(cfg StreamConfig) jetstream.ConsumerConfig {
	// No filter: the stream holds attempts alone, and a filter, even
	// one equal to the stream's subject, makes the server match it
	// against every subject (one per attempt) to find the first
	// message and count what is pending: 45-56 ms at a backlog of a
	// million attempts on an idle server, more than a fetch waits.
	return durableConsumer(cfg, cfg.Consumer, "quizstream workers: attempts to PostgreSQL")
}

// durableConsumer is a durable consumer the workers share on a stream
// cfg describes: every message from the first, each acknowledged.
func durableConsumer(cfg StreamConfig, durable, description string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   description,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		// Unlimited: poison is isolated by the worker, not by a delivery count.
		MaxDeliver:    -1,
		MaxAckPending: cfg.MaxAckPending,
		Replicas:      cfg.Replicas,
	}
}

// deadLetterConfig is the dead-letter stream as cfg describes it.
func deadLetterConfig(cfg StreamConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        cfg.DeadLetterStream(),
		Description: "quizstream dead letters: attempts that could never be stored",
		Subjects:    []string{DeadLetterPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.Duplicates,
		MaxBytes:    cfg.DeadLetterMaxBytes,
	}
}

// EnsureStream creates the attempts stream, or updates it to cfg when it
// exists, without the checks of Apply, and returns it: for tests and
// tools that own their server. A service process only looks (OpenLog).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, streamConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// EnsureConsumer creates or updates the durable pull consumer that all
// workers share, without the checks of Apply, and returns it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := js.CreateOrUpdateConsumer(ctx, cfg.Name, consumerConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s: %w", cfg.Consumer, err)
	}
	return c, nil
}
