package load_test

import (
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// The exam workload on a private stack whose sprint lasts 6 s: students
// log in, start, autosave (some saves re-sent, some out of order), half
// submit and half are finalized by the deadline; every task is timed, the
// lateness of each deadline's finalization measured, and the check finds
// every attempt graded from the highest-seq saves.
func TestExam(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	if _, err := s.DB.Exec(t.Context(), `UPDATE quizzes SET time_limit_s = 6 WHERE id = $1`, store.DemoSprintID); err != nil {
		t.Fatal(err)
	}
	// Logins and signups wait for a hash as long as it takes: a 503 would
	// be tried again, but the test's machine may be slow.
	in := s.StartAPI(t, api.Config{HashWait: time.Minute,
		Exams: api.ExamConfig{Grace: time.Second, Settle: 300 * time.Millisecond}})
	s.StartWorker(t, worker.Config{})
	const students = 8
	res := run(t, load.Config{
		URL: in.URL, Users: students, SingleAddr: true,
		Exam: &load.ExamConfig{
			LoginSpread: time.Second, StartWithin: 300 * time.Millisecond,
			SaveEveryMin: 200 * time.Millisecond, SaveEveryMax: 400 * time.Millisecond, SubmitWindow: 2 * time.Second,
			SubmitShare: 0.5, ResaveShare: 0.3, OutOfOrderShare: 0.3, FinalizePoll: 50 * time.Millisecond,
			Key: sprintKey(),
		},
	})
	if res.Mode != "exam" || len(res.Tasks) != 4 {
		t.Fatalf("mode %q with %d tasks; want exam with login, start, save, exam_submit", res.Mode, len(res.Tasks))
	}
	for _, task := range res.Tasks {
		if task.Errors != 0 {
			t.Errorf("task %s: %d errors (and %d 503, %d 429, tried again)", task.Name, task.Errors, task.Unavailable, task.RateLimited)
		}
		if task.Requests > 0 {
			checkLatency(t, task.Name, task.Latency, task.Requests)
		}
	}
	login, _ := res.Task(load.TaskLogin)
	start, _ := res.Task(load.TaskStart)
	save, _ := res.Task(load.TaskSave)
	x := res.Exam
	if x == nil || login.Requests != students || start.Requests != students || x.Sessions != students || x.TimeLimitS != 6 || x.GraceS != 1 {
		t.Fatalf("%d logins, %d starts, exam %+v; want %d of each on the 6 s sprint", login.Requests, start.Requests, x, students)
	}
	submit, _ := res.Task(load.TaskExamSubmit)
	if submit.Requests != x.Submitted || int(x.Submitted) != x.Submitters || x.Submitters+x.Expired != students {
		t.Errorf("%d submits answered, exam %+v", submit.Requests, x)
	}
	if save.Requests != x.Saves || x.Saves == 0 || x.LoginRate <= 0 {
		t.Errorf("%d saves answered, exam %+v", save.Requests, x)
	}
	if x.Lateness.Count != int64(x.Expired) || x.LatenessTimedOut != 0 {
		t.Errorf("lateness of %d sessions (%d timed out) for %d left to the deadline", x.Lateness.Count, x.LatenessTimedOut, x.Expired)
	}
	v := x.Verify
	if v == nil || !v.OK || v.Graded != students || v.AnswersExact != students || v.Listed != students {
		t.Fatalf("check: %+v", v)
	}
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil || !strings.Contains(b.String(), "check OK") {
		t.Errorf("table: %v\n%s", err, b.String())
	}
}

// sprintKey is the demo sprint's answer key.
func sprintKey() map[string]string {
	key := map[string]string{}
	for _, c := range store.DemoContent(store.DefaultDemo) {
		for _, q := range c.Quizzes {
			if q.ID != store.DemoSprintID {
				continue
			}
			for _, qu := range q.Questions {
				for _, ch := range qu.Choices {
					if ch.Correct {
						key[qu.ID.String()] = ch.ID.String()
					}
				}
			}
		}
	}
	return key
}
