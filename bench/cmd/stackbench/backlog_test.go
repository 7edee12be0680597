package main

import (
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

func TestChunks(t *testing.T) {
	for _, c := range []struct {
		n, size int
		want    [][2]int
	}{
		{1000, 0, [][2]int{{0, 1000}}},
		{1000, 500, [][2]int{{0, 500}, {500, 1000}}},
		{1001, 500, [][2]int{{0, 500}, {500, 1000}, {1000, 1001}}},
		{3, 500, [][2]int{{0, 3}}},
		{0, 500, nil},
	} {
		if got := chunks(c.n, c.size); !reflect.DeepEqual(got, c.want) {
			t.Errorf("chunks(%d, %d) = %v, want %v", c.n, c.size, got, c.want)
		}
	}
}

func TestBacklogFinish(t *testing.T) {
	r := backlogResult{Attempts: 1000, PublishSeconds: 0.5, DrainSeconds: 2,
		Reference: []referenceRun{{Rows: 1000, Seconds: 1}, {Rows: 1000, Seconds: 4}}}
	r.finish()
	if r.PublishPerS != 2000 || r.DrainPerS != 500 || r.Reference[0].PerS != 1000 || r.Reference[1].PerS != 250 {
		t.Errorf("rates: publish %g, drain %g, references %g and %g", r.PublishPerS, r.DrainPerS, r.Reference[0].PerS, r.Reference[1].PerS)
	}
	if r.Best != 0 || r.Ratio != 0.5 || r.Met || r.Target != 0.6 {
		t.Errorf("reference %d, ratio %g, met %v, target %g; want 0.5 against the faster reference (0), not met", r.Best, r.Ratio, r.Met, r.Target)
	}
	r.DrainSeconds = 1.6
	r.finish()
	if r.Ratio != 0.625 || !r.Met {
		t.Errorf("ratio %g, met %v; want 0.625, met", r.Ratio, r.Met)
	}
	// The faster reference is the one held, wherever it is listed.
	r.Reference[0].Seconds, r.Reference[1].Seconds = 4, 1
	r.finish()
	if r.Best != 1 || r.Ratio != 0.625 {
		t.Errorf("reference %d, ratio %g; want the second, 0.625", r.Best, r.Ratio)
	}
	r.Reference[1].Error = "boom"
	r.finish()
	if r.Best != 0 || r.Ratio != 2.5 {
		t.Errorf("a failed reference was held: reference %d, ratio %g", r.Best, r.Ratio)
	}
	r.Reference[0].Error = "boom"
	r.finish()
	if r.Best != -1 || r.Ratio != 0 || r.Met {
		t.Errorf("failed references gave reference %d, ratio %g, met %v", r.Best, r.Ratio, r.Met)
	}
	empty := backlogResult{Attempts: 10}
	empty.finish()
	if empty.Ratio != 0 || empty.Met || empty.DrainPerS != 0 {
		t.Errorf("a phase that measured nothing: %+v", empty)
	}
}

// The backlog's events are what the API would publish: decodable at
// their own subject, of the given students and untimed quizzes, graded
// against the answer key, each with its own attempt id.
func TestBacklogEvents(t *testing.T) {
	courses := store.DemoContent(store.DefaultDemo)
	quizzes := untimedQuizzes(courses)
	if len(quizzes) != 200 {
		t.Fatalf("%d untimed demo quizzes, want 200", len(quizzes))
	}
	byID := map[uuid.UUID]store.Quiz{}
	for _, q := range quizzes {
		if q.TimeLimit != 0 {
			t.Fatalf("timed quiz %s kept", q.ID)
		}
		byID[q.ID] = q
	}
	g := backlogEvents{run: "test", students: []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}, quizzes: quizzes}
	seen := map[uuid.UUID]bool{}
	at := time.Now()
	for i := range 2000 {
		e := g.event(i, at)
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := events.DecodeAt(e.Subject(), data)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if seen[got.AttemptID] {
			t.Fatalf("event %d repeats attempt id %s", i, got.AttemptID)
		}
		seen[got.AttemptID] = true
		if got.AttemptID != events.AttemptID(got.StudentID, got.IdempotencyKey) {
			t.Errorf("event %d: attempt id not derived from its key", i)
		}
		q, ok := byID[got.QuizID]
		if !ok || q.CourseID != got.CourseID {
			t.Fatalf("event %d: quiz %s of course %s is not a seeded untimed quiz", i, got.QuizID, got.CourseID)
		}
		correct := map[string]bool{}
		for _, question := range q.Questions {
			for _, c := range question.Choices {
				correct[question.ID.String()+"="+c.ID.String()] = c.Correct
			}
		}
		score := 0
		for _, a := range got.Answers {
			c, ok := correct[a.QuestionID+"="+a.ChoiceID]
			if !ok {
				t.Fatalf("event %d: answer %+v is not of its quiz", i, a)
			}
			if c {
				score++
			}
		}
		if len(got.Answers) != len(q.Questions) || got.Score != score || got.MaxScore != len(q.Questions) {
			t.Errorf("event %d: %d answers, score %d of %d; want %d answers, score %d", i, len(got.Answers), got.Score, got.MaxScore, len(q.Questions), score)
		}
	}
	if a, b := g.event(7, at), g.event(7, at); !reflect.DeepEqual(a, b) {
		t.Error("event 7 differs from itself")
	}
}

func TestBacklogReport(t *testing.T) {
	bl := &backlogResult{Attempts: 1000, Students: 500, Quizzes: 200, PublishSeconds: 0.5, DrainSeconds: 2,
		DrainCPU: map[string]float64{tierWorker: 1.5}, WorkerPeakRSSKiB: 40960,
		Reference: []referenceRun{{What: "one COPY", Chunk: 1000, Rows: 1000, Seconds: 1, Inserted: 1000}, {What: "chunks", Chunk: 500, Rows: 1000, Seconds: 4, Inserted: 1000}}}
	bl.finish()
	r := report{Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Options: options{Users: 500, Only: onlyBacklog}, Backlog: bl}
	var b strings.Builder
	if err := r.writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, s := range []string{"## Backlog of 1000 attempts", "| **worker drains the backlog** | **500** | 2.0 s |", "Worker / the faster reference: **0.50** (target 0.60): **not met**", "40 MiB"} {
		if !strings.Contains(md, s) {
			t.Errorf("the Markdown lacks %q:\n%s", s, md)
		}
	}
	if strings.Contains(md, "nothing") {
		t.Error("a drain that did not stall reads as stalled")
	}
	r.Backlog.StalledSeconds, r.Backlog.WorkerEnv = 60, "BATCH_MAX_WAIT=2s"
	b.Reset()
	if err := r.writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md = b.String()
	for _, s := range []string{"| **worker drains the backlog (BATCH_MAX_WAIT=2s)** |", "**The worker stored nothing** in 60 s"} {
		if !strings.Contains(md, s) {
			t.Errorf("the Markdown of a stalled drain lacks %q", s)
		}
	}
	if strings.Contains(md, "## Open model") {
		t.Error("-only backlog rendered the designs' sections")
	}
	// The full report has the section too, and its JSON keeps it.
	r.Options.Only = ""
	dir := t.TempDir()
	md2, js, err := r.write(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(md2)
	if !strings.Contains(string(got), "## Backlog of 1000 attempts") || !strings.Contains(string(got), "## Open model") {
		t.Error("the full report lacks the backlog section or the designs' sections")
	}
	raw, _ := os.ReadFile(js)
	var back report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Backlog == nil || back.Backlog.Ratio != 0.5 || back.Backlog.Reference[1].PerS != 250 {
		t.Errorf("the JSON lost the backlog: %+v", back.Backlog)
	}
}

// Settings the backlog phase refuses before anything starts.
func TestBacklogFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-only", "mix"},
		{"-only", "backlog", "-backlog", "0"},
		{"-backlog-worker-env", "WORKERS"},
		{"-backlog-worker-env", "=2"},
	} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
