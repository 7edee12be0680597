package eventlog

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
)

// OpenExamReader opens a Reader on the exams events stream cfg names over
// r: the session events in stream order, as OpenReader reads attempts. It
// returns ErrNoStream when there is no such stream, or the error that
// stopped it.
func OpenExamReader(ctx context.Context, js jetstream.JetStream, cfg streams.ExamStreamConfig, r Range) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return openReader(ctx, js, cfg.Name, events.ExamSubjectPrefix+".>", r)
}

// OpenCheckReader opens a Reader on the code checks stream cfg names over
// r: the check events in stream order, as OpenReader reads attempts. It
// returns ErrNoStream when there is no such stream, or the error that
// stopped it.
func OpenCheckReader(ctx context.Context, js jetstream.JetStream, cfg streams.CheckStreamConfig, r Range) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return openReader(ctx, js, cfg.Name, events.CheckSubjectPrefix+".>", r)
}
