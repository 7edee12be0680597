package readmodel_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

var examNamespace = uuid.MustParse("6b1f0c52-93c4-4e0a-b7d4-2a9e5c3f8d10")

// addExam adds a course holding one timed quiz of 5 questions of 3
// choices to the stack's content; instances load content when they
// start: add it first.
func addExam(t testing.TB, s *apptest.Stack, name string) store.Quiz {
	t.Helper()
	id := func(n string) uuid.UUID { return uuid.NewSHA1(examNamespace, []byte(name+"/"+n)) }
	course := store.Course{ID: id("course"), Slug: "rm-" + name, Title: "Read model " + name, Description: "A test exam."}
	q := store.Quiz{ID: id("quiz"), CourseID: course.ID, Title: "Exam " + name, TimeLimit: 10 * time.Minute}
	for u := range 5 {
		qu := store.Question{ID: id(fmt.Sprintf("q%d", u)), Prompt: fmt.Sprintf("Question %d?", u+1)}
		for h := range 3 {
			qu.Choices = append(qu.Choices, store.Choice{ID: id(fmt.Sprintf("q%d/c%d", u, h)), Text: fmt.Sprintf("%c", 'A'+h), Correct: h == 0})
		}
		q.Questions = append(q.Questions, qu)
	}
	course.Quizzes = []store.Quiz{q}
	if _, err := s.Store.SaveContent(t.Context(), []store.Course{course}); err != nil {
		t.Fatalf("add exam %s: %v", name, err)
	}
	return q
}

// program is a source the fake Judge0 runs as a solution of the demo's
// sum exercise (passed when right), unique by tag.
func program(tag string, right bool) string {
	last := `"3000000000\n"`
	if !right {
		last = `"-1294967296\n"`
	}
	return fmt.Sprintf("# check %s\n# judge0test: \"1 2\\n\" -> \"3\\n\"\n# judge0test: \"-5 5\\n\" -> \"0\\n\"\n"+
		"# judge0test: \"1000000000 2000000000\\n\" -> %s\nprint(sum(map(int, input().split())))\n", tag, last)
}

// startFull runs an API, a worker and (with judge0 set) a checker of the
// fake in this process, as one instance.
func startFull(t *testing.T, s *apptest.Stack, judge0 string) *apptest.Instance {
	t.Helper()
	cfg := s.Config(t)
	cfg.API, cfg.Workers = true, 1
	cfg.APIConfig.AttemptRate, cfg.APIConfig.MaxUnsettledPerStudent, cfg.APIConfig.TokenMissRate = -1, -1, -1
	cfg.APIConfig.TokenCacheTTL, cfg.APIConfig.HashWait = 10*time.Minute, time.Minute
	if judge0 != "" {
		cfg.Checker = app.CheckerConfig{Run: true, Client: checker.Config{
			URL: judge0, Timeout: 2 * time.Second, CheckTimeout: 30 * time.Second, PollInterval: 20 * time.Millisecond,
			RatePerSecond: 2000, MaxConcurrent: 16, Retry: retry.Policy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
			Breaker: checker.BreakerConfig{Failures: 5, OpenFor: time.Second}}}
	}
	return s.Start(t, cfg)
}

// waitConsumed waits until a stream's consumer has acknowledged every
// message of the stream.
func waitConsumed(t testing.TB, s *apptest.Stack, stream, consumer string) {
	t.Helper()
	apptest.WaitFor(t, time.Minute, consumer+" to acknowledge every event of "+stream, func() bool {
		st, err := s.JS.Stream(t.Context(), stream)
		if err != nil {
			return false
		}
		info, err := st.Info(t.Context())
		if err != nil {
			return false
		}
		c, err := st.Consumer(t.Context(), consumer)
		if err != nil {
			return false
		}
		ci, err := c.Info(t.Context())
		return err == nil && ci.AckFloor.Stream >= info.State.LastSeq
	})
}

// waitPartsSettled waits until the exam and check writers stored every
// event of their streams (and so folded it into the model).
func waitPartsSettled(t testing.TB, s *apptest.Stack) {
	t.Helper()
	waitConsumed(t, s, streams.DefaultExamStreamName, streams.DefaultExamWriter)
	waitConsumed(t, s, streams.DefaultCheckStreamName, streams.DefaultCheckWriter)
}

// partsEqualPostgres fails t unless every student's sessions and checks
// in the model are what PostgreSQL holds.
func partsEqualPostgres(t testing.TB, s *apptest.Stack, m *readmodel.Model, students []apptest.Student) {
	t.Helper()
	for _, st := range students {
		wantS, err := worker.SessionsFromPostgres(t.Context(), s.Store, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		gotS, _, err := m.GetSessions(t.Context(), st.ID)
		if err != nil || !gotS.Equal(&wantS) {
			t.Errorf("sessions of %s: model %+v (%v), PostgreSQL %+v", st.ID, gotS, err, wantS)
		}
		wantC, err := worker.ChecksFromPostgres(t.Context(), s.Store, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		gotC, _, err := m.GetChecks(t.Context(), st.ID)
		if err != nil || !gotC.Equal(&wantC) {
			t.Errorf("checks of %s: model %+v (%v), PostgreSQL %+v", st.ID, gotC, err, wantC)
		}
	}
}

// checkSessions fails t unless got are the student's sessions in
// PostgreSQL (only the one with id only, unless uuid.Nil), newest first,
// with their state and answers.
func checkSessions(t testing.TB, s *apptest.Stack, id, only uuid.UUID, got []client.Session) {
	t.Helper()
	rows, err := s.Store.ListExamSessions(t.Context(), id, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	if only != uuid.Nil {
		rows = slices.DeleteFunc(rows, func(r store.ExamSessionRow) bool { return r.ID != only })
	}
	if len(got) != len(rows) {
		t.Fatalf("sessions of %s: %d, PostgreSQL %d: %+v", id, len(got), len(rows), got)
	}
	for i, g := range got {
		r := rows[i]
		state := "open"
		if r.Final != nil {
			state = map[string]string{"student": "submitted", "deadline": "expired"}[r.Final.By]
		}
		if g.SessionID != r.ID.String() || g.State != state || !g.Deadline.Equal(r.Deadline) || len(g.Answers) != len(r.Answers) ||
			(r.Final != nil && g.AttemptID != r.Final.AttemptID.String()) || (r.Final == nil && g.AttemptID != "") {
			t.Fatalf("session %d of %s: %+v, PostgreSQL %+v", i, id, g, r)
		}
		for _, a := range g.Answers {
			found := false
			for _, ra := range r.Answers {
				if ra.QuestionID.String() == a.QuestionID && ra.Seq == a.Seq && (ra.ChoiceID == nil) == (a.ChoiceID == nil) &&
					(ra.ChoiceID == nil || ra.ChoiceID.String() == *a.ChoiceID) {
					found = true
				}
			}
			if !found {
				t.Fatalf("session %s of %s: answer %+v not in PostgreSQL's %+v", g.SessionID, id, a, r.Answers)
			}
		}
	}
}

// sameCheck fails t unless got is PostgreSQL's row r.
func sameCheck(t testing.TB, got client.Check, r store.Check) {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, got.SubmittedAt)
	if err != nil || got.CheckID != r.ID.String() || got.Status != r.Status || got.Output != r.Output || len(got.Tests) != len(r.Tests) ||
		!at.Equal(r.SubmittedAt) || (got.FinishedAt == nil) != (r.FinishedAt == nil) {
		t.Fatalf("check %s: %+v, PostgreSQL %+v", r.ID, got, r)
	}
}
