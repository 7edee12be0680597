// Package eventstest runs real NATS servers with JetStream (the server as a
// library, at the version go.mod pins) for tests.
package eventstest

import (
	"testing"
	"time"

	"github.com/google/uuid"

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

// ExamStart returns the ExamStarted of a new session of student on quiz
// with questions questions of choices choices each, choice u%choices of
// question u correct, its deadline in d and grace g seconds.
func ExamStart(student, quiz uuid.UUID, questions, choices int, d time.Duration, g int) events.ExamStarted {
	now := time.Now().UTC().Truncate(time.Microsecond)
	st := events.ExamStarted{SessionID: uuid.New(), StudentID: student, QuizID: quiz, CourseID: uuid.New(),
		Number: 1, StartedAt: now, Deadline: now.Add(d), GraceS: g}
	for u := range questions {
		q := events.ExamQuestion{ID: uuid.New()}
		for h := range choices {
			q.Choices = append(q.Choices, events.ExamChoice{ID: uuid.New(), Correct: h == u%choices})
		}
		st.Questions = append(st.Questions, q)
	}
	return st
}

// ExamSave returns the save of choice h (-1: none) of question u of st's
// session, at seq.
func ExamSave(st events.ExamStarted, u, h int, seq int64) events.AnswerSaved {
	a := events.AnswerSaved{SessionID: st.SessionID, StudentID: st.StudentID, QuizID: st.QuizID,
		QuestionID: st.Questions[u].ID, Seq: seq, SavedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if h >= 0 {
		a.ChoiceID = &st.Questions[u].Choices[h].ID
	}
	return a
}
