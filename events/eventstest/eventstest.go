// Package eventstest runs real NATS servers with JetStream (the server as a
// library, at the version go.mod pins) for tests.
package eventstest

import (
	"github.com/google/uuid"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/natsserver"
)

// NewServer starts a JetStream server on a free loopback port with its file
// store in a temporary folder, and shuts it down when t ends. Writes are
// fsynced before they are acknowledged, as in production.
func NewServer(t testing.TB) *server.Server {
	t.Helper()
	return StartServer(t, natsserver.ServerConfig{Dir: t.TempDir(), SyncAlways: true})
}

// StartServer starts a server as cfg says and shuts it down when t ends.
func StartServer(t testing.TB, cfg natsserver.ServerConfig) *server.Server {
	t.Helper()
	s, err := natsserver.StartServer(cfg)
	if err != nil {
		t.Fatalf("eventstest: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect returns a connection to s and its JetStream context, closed when t ends.
func Connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("eventstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("eventstest: jetstream: %v", err)
	}
	return nc, js
}

// StreamMessages returns how many messages the stream holds.
func StreamMessages(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("eventstest: stream %s: %v", stream, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("eventstest: stream info: %v", err)
	}
	return info.State.Msgs
}

// Attempt returns a valid attempt event of student on a new quiz, its id
// derived from key as the API derives it.
func Attempt(student uuid.UUID, key string, answers []events.Answer) events.AttemptSubmitted {
	quiz := uuid.New()
	return events.AttemptSubmitted{
		AttemptID: events.AttemptID(student, key), StudentID: student, QuizID: quiz, CourseID: uuid.New(),
		IdempotencyKey: key, Answers: answers, AnswersHash: events.HashAnswers(quiz, answers),
		Score: 0, MaxScore: 10, SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}
