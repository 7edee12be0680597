package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// runCommand runs the quizstream command line in process (run, as main
// does) against the stack and returns what it printed; it fails t when the
// command returns an error.
func runCommand(t testing.TB, s *apptest.Stack, args ...string) string {
	t.Helper()
	env := map[string]string{"DATABASE_URL": s.DBURL, "NATS_URL": s.NATSURL, "LOG_LEVEL": "warn"}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), args, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("quizstream %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// An operator lists and inspects what the workers set aside, fixes the
// cause, and redrives it: the attempt is then recorded, once.
func TestDeadLetterCommands(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	if _, err := s.DB.Exec(t.Context(), `ALTER TABLE attempts ADD CONSTRAINT no_perfect CHECK (status = 'failed' OR score < max_score)`); err != nil {
		t.Fatal(err)
	}
	quiz := s.Quizzes[0]
	student := uuid.New()
	var answers []events.Answer
	for _, a := range apptest.AnswersFor(quiz, len(quiz.Questions)) {
		answers = append(answers, events.Answer(a))
	}
	e := events.AttemptSubmitted{
		AttemptID: uuid.New(), StudentID: student, QuizID: quiz.ID, CourseID: quiz.CourseID,
		Answers: answers, AnswersHash: events.HashAnswers(quiz.ID, answers),
		Score: 10, MaxScore: 10, SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
	pub, err := s.Log.PublishAttempt(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	w := s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 10*time.Second)
	w.Stop()

	list := runCommand(t, s, "dlq", "list")
	if !strings.Contains(list, "no_perfect") || !strings.Contains(list, e.Subject()) || !strings.Contains(list, "1 dead letter(s)") {
		t.Fatalf("dlq list:\n%s", list)
	}
	show := runCommand(t, s, "dlq", "show", "1")
	if !strings.Contains(show, "original_seq: "+strconv.FormatUint(pub.Seq, 10)) || !strings.Contains(show, e.AttemptID.String()) {
		t.Fatalf("dlq show 1:\n%s", show)
	}

	if _, err := s.DB.Exec(t.Context(), `ALTER TABLE attempts DROP CONSTRAINT no_perfect`); err != nil {
		t.Fatal(err)
	}
	if out := runCommand(t, s, "dlq", "redrive", "--all"); !strings.Contains(out, "dead letter 1 republished") {
		t.Fatalf("dlq redrive --all:\n%s", out)
	}
	s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 10*time.Second)
	var status string
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT status, count(*) OVER () FROM attempts WHERE id = $1`, e.AttemptID).Scan(&status, &n); err != nil || status != "recorded" || n != 1 {
		t.Fatalf("after the redrive: status %q, rows %d, %v", status, n, err)
	}
	if list := runCommand(t, s, "dlq", "list"); !strings.Contains(list, "0 dead letter(s)") {
		t.Fatalf("dlq list after the redrive:\n%s", list)
	}
}
