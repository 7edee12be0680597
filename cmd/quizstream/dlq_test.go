package main

import (
	"bytes"
	"encoding/json"
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
	stdout, stderr, err := runOn(t, s, args...)
	if err != nil {
		t.Fatalf("quizstream %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// runOn runs the command line against the stack: the flags of its
// database, NATS server and log level are added where the command takes
// them.
func runOn(t testing.TB, s *apptest.Stack, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	f := flagsOf(t, args[0], &config{})
	for flag, v := range map[string]string{"database-url": s.DBURL, "nats-url": s.NATSURL, "log-level": "warn"} {
		if f.fs.Lookup(flag) != nil {
			args = append(args, "--"+flag, v)
		}
	}
	var out, errOut bytes.Buffer
	err = run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// runJSON runs a command with --json and decodes what it printed into v.
func runJSON(t testing.TB, s *apptest.Stack, v any, args ...string) {
	t.Helper()
	out := runCommand(t, s, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("quizstream %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
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

	var list []streams.DeadLetter
	runJSON(t, s, &list, "dlq", "list")
	if len(list) != 1 || list[0].Seq != 1 || list[0].OriginalSeq != pub.Seq || list[0].OriginalSubject != e.Subject() ||
		!strings.Contains(list[0].Reason, "no_perfect") {
		t.Fatalf("dlq list: %+v", list)
	}
	var shown streams.DeadLetter
	runJSON(t, s, &shown, "dlq", "show", "1")
	if got, err := events.Decode(shown.Data); shown.OriginalSeq != pub.Seq || err != nil || got.AttemptID != e.AttemptID {
		t.Fatalf("dlq show 1: %+v: %+v, %v", shown, got, err)
	}

	if _, err := s.DB.Exec(t.Context(), `ALTER TABLE attempts DROP CONSTRAINT no_perfect`); err != nil {
		t.Fatal(err)
	}
	runCommand(t, s, "dlq", "redrive", "--all")
	s.StartWorker(t, worker.Config{})
	s.WaitDrained(t, 10*time.Second)
	var status string
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT status, count(*) OVER () FROM attempts WHERE id = $1`, e.AttemptID).Scan(&status, &n); err != nil || status != "recorded" || n != 1 {
		t.Fatalf("after the redrive: status %q, rows %d, %v", status, n, err)
	}
	if runJSON(t, s, &list, "dlq", "list"); len(list) != 0 {
		t.Fatalf("dlq list after the redrive: %+v", list)
	}
}
