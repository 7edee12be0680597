package streams

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/events"
)

// Family declares one event family's JetStream objects: the streams that
// hold its events and the durable consumers that project them. Apply,
// Check and Status work on any list of families, so a new family adds a
// declaration here, never a copy of the machinery (docs/architecture.md,
// "Adding an event family").
type Family struct {
	// Name is the family's name in logs, metrics and `stream status`.
	Name      string
	Streams   []Stream
	Consumers []Consumer
	// err is the error of the configuration the family was declared
	// from: Apply, Check and Status return it before anything else.
	err error
}

// Stream is one stream of a family and what a process checks of it.
type Stream struct {
	Config jetstream.StreamConfig
	// Fatal lists the settings a process refuses to start with when they
	// differ from Config: those that decide what a 202 means or how long
	// it is kept. The others are warnings.
	Fatal []string
	// Only, when set, limits the settings compared to these.
	Only []string
	// Optional streams are not needed by every process (the dead letters,
	// which only workers write): Check lists a missing one in Missing
	// rather than failing.
	Optional bool
}

// Consumer is one durable consumer of a family.
type Consumer struct {
	Stream string
	Config jetstream.ConsumerConfig
	// Fatal lists the settings a process refuses to start with when they differ.
	Fatal []string
}

// The settings whose difference stops a process: the durability of a 202.
var (
	recordFatal   = []string{"replicas", "storage", "retention", "discard", "subjects"}
	consumerFatal = []string{"ack_policy", "filter_subject", "max_deliver"}
)

// Attempts declares the attempts family: the ATTEMPTS stream (the system
// of record of attempts), its dead letters, the writers' consumer and,
// with the read model on, the model's (ReadModelConsumer).
func Attempts(cfg StreamConfig) Family {
	err := cfg.Validate()
	consumers := []Consumer{{Stream: cfg.Name, Config: consumerConfig(cfg), Fatal: consumerFatal}}
	if cfg.ReadModel {
		consumers = append(consumers, Consumer{Stream: cfg.Name, Fatal: consumerFatal,
			Config: durableConsumer(cfg, ReadModelConsumer, "quizstream workers: settled attempts into the read model")})
	}
	return Family{
		Name: "attempts",
		Streams: []Stream{
			{Config: streamConfig(cfg), Fatal: recordFatal},
			// Only what decides a dead letter's fate is checked.
			{Config: deadLetterConfig(cfg), Only: []string{"replicas"}, Optional: true},
		},
		Consumers: consumers,
		err:       err,
	}
}

// Exams declares the exams family (ExamStreamConfig): the EXAMS stream
// (the system of record of sessions), the EXAM_TIMERS stream of message
// schedules, the writers' consumer and the finalizers' consumer of fired
// timers.
func Exams(cfg ExamStreamConfig) Family {
	err := cfg.Validate()
	// The events stream and both consumers are built as the attempts
	// stream and its consumer are.
	sessions := StreamConfig{Name: cfg.Name, Replicas: cfg.Replicas, Duplicates: cfg.Duplicates, MaxAge: cfg.MaxAge,
		MaxBytes: cfg.MaxBytes, AckWait: cfg.AckWait, MaxAckPending: cfg.MaxAckPending}
	writer := durableConsumer(sessions, cfg.Writer, "quizstream workers: exam sessions to PostgreSQL")
	writer.FilterSubject = events.ExamSubjectPrefix + ".>"
	finalizer := durableConsumer(sessions, cfg.Finalizer, "quizstream workers: sessions finalized at their deadline")
	finalizer.FilterSubject = events.ExamTimerPrefix + ".due.*"
	return Family{
		Name: "exams",
		Streams: []Stream{
			{Config: recordStream(sessions, "quizstream exam sessions: the system of record of starts, saves and finalizations",
				events.ExamSubjectPrefix), Fatal: recordFatal},
			{Config: timerStream(cfg), Fatal: []string{"replicas", "storage", "allow_msg_schedules"}},
		},
		Consumers: []Consumer{
			{Stream: cfg.Name, Config: writer, Fatal: consumerFatal},
			{Stream: cfg.TimerName, Config: finalizer, Fatal: consumerFatal},
		},
		err: err,
	}
}

// timerStream is EXAM_TIMERS: one message schedule per session, and what
// they fire.
func timerStream(cfg ExamStreamConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        cfg.TimerName,
		Description: "quizstream exam timers: one message schedule per session, and what they fire",
		Subjects:    []string{events.ExamTimerPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		// Message schedules need DiscardOld (the server refuses DiscardNew).
		Discard:            jetstream.DiscardOld,
		Storage:            jetstream.FileStorage,
		Replicas:           cfg.Replicas,
		MaxAge:             cfg.MaxAge,
		MaxBytes:           cfg.TimerMaxBytes,
		Duplicates:         cfg.Duplicates,
		MaxMsgSize:         4 << 10, // a timer is a few hundred bytes
		AllowMsgSchedules:  true,
		AllowRollup:        true, // a schedule replaces the session's earlier one
		AllowAtomicPublish: true,
	}
}

// Declared returns every family a quizstream process runs, as its
// configuration sizes them: what `stream apply` applies and processes
// check at start. The zero Replicas of exams and checks takes attempts'.
func Declared(attempts StreamConfig, exams ExamStreamConfig, checks CheckStreamConfig) []Family {
	replicas := attempts.Replicas
	if replicas == 0 {
		replicas = 1
	}
	if exams.Replicas == 0 {
		exams.Replicas = replicas
	}
	if checks.Replicas == 0 {
		checks.Replicas = replicas
	}
	return []Family{Attempts(attempts), Exams(exams), Checks(checks), ReadModel(attempts)}
}

// Err returns an error wrapping ErrNotApplied that names every stream and
// consumer the status found missing, or nil when none is.
func (st StatusResult) Err() error {
	var missing []string
	for _, f := range st.Families {
		missing = append(missing, f.Missing...)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %w", strings.Join(missing, ", "), ErrNotApplied)
	}
	return nil
}
