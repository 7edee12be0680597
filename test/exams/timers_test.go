package exams_test

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// percentiles returns p50, p99 and the maximum of ds, which it sorts.
func percentiles(ds []time.Duration) (p50, p99, worst time.Duration) {
	slices.Sort(ds)
	n := len(ds)
	return ds[n/2].Round(time.Millisecond), ds[n*99/100].Round(time.Millisecond), ds[n-1].Round(time.Millisecond)
}

// The measurement behind the choice of durable timers (docs/exams.md,
// "Why message schedules"): 2,000 sessions due at the same instant, fired
// by JetStream message schedules (what quizstream runs) and by a worker
// scanning a due-time column in PostgreSQL (the alternative, prototyped
// here), with 100,000 sessions not due beside them. It logs how late each
// way finalizes them, and what arming and scanning cost. Set
// QUIZSTREAM_MEASURE=1 to run it.
func TestTimerMeasurements(t *testing.T) {
	if os.Getenv("QUIZSTREAM_MEASURE") == "" {
		t.Skip("a measurement: set QUIZSTREAM_MEASURE=1")
	}
	const due, notDue = 2000, 100000
	s := apptest.New(t, streams.StreamConfig{})
	xl := examLog(t, s)
	ctx := t.Context()

	t.Run("message schedules", func(t *testing.T) {
		cons, err := xl.FinalizerConsumer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(4 * time.Second)
		start := time.Now()
		var wg sync.WaitGroup
		for range due {
			wg.Go(func() {
				if err := xl.Arm(ctx, events.ExamDue{SessionID: uuid.New(), StudentID: uuid.New(), QuizID: uuid.New(), DueAt: at}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		armed := time.Since(start)
		late := make([]time.Duration, 0, due)
		for len(late) < due && time.Since(at) < 30*time.Second {
			b, err := cons.Fetch(500, jetstream.FetchMaxWait(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			for m := range b.Messages() {
				late = append(late, time.Since(at))
				m.Ack()
			}
		}
		if len(late) != due {
			t.Fatalf("%d of %d timers fired", len(late), due)
		}
		p50, p99, worst := percentiles(late)
		t.Logf("schedules: %d armed concurrently in %s; fired late by p50 %s, p99 %s, max %s (consumer fetch wait 100ms)",
			due, armed.Round(time.Millisecond), p50, p99, worst)
	})

	// The whole way, as quizstream runs it: sessions (300, then 2,000) whose timers
	// fire at once, finalized by one worker process from their saves, and
	// their attempts published.
	expiring := func(t *testing.T, due int) {
		quiz := addExam(t, s, fmt.Sprintf("expiry-%d", due), nil)
		var questions []events.ExamQuestion
		for _, q := range quiz.Questions {
			eq := events.ExamQuestion{ID: q.ID}
			for _, ch := range q.Choices {
				eq.Choices = append(eq.Choices, events.ExamChoice{ID: ch.ID, Correct: ch.Correct})
			}
			questions = append(questions, eq)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		cutoff := now.Add(5 * time.Second)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 256)
		for i := range due {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				st := events.ExamStarted{SessionID: uuid.New(), StudentID: uuid.New(), QuizID: quiz.ID, CourseID: quiz.CourseID,
					Number: 1, StartedAt: now, Deadline: cutoff, Questions: questions}
				if err := xl.Arm(ctx, events.ExamDue{SessionID: st.SessionID, StudentID: st.StudentID, QuizID: quiz.ID, DueAt: cutoff}); err != nil {
					t.Error(err)
					return
				}
				seq, err := xl.Append(ctx, events.ExamEvent{Started: &st}, 0)
				if err != nil {
					t.Error(err)
					return
				}
				sv := events.AnswerSaved{SessionID: st.SessionID, StudentID: st.StudentID, QuizID: quiz.ID,
					QuestionID: quiz.Questions[i%10].ID, ChoiceID: &quiz.Questions[i%10].Choices[0].ID, Seq: 1, SavedAt: now}
				if _, err := xl.Append(ctx, events.ExamEvent{Saved: &sv}, seq); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if time.Now().After(cutoff) {
			t.Fatal("the sessions were not all started before their deadline")
		}
		before := eventstest.StreamMessages(t, s.JS, s.Stream.Name)
		apptest.WaitFor(t, 2*time.Minute, "every session's attempt", func() bool {
			return eventstest.StreamMessages(t, s.JS, s.Stream.Name) >= before+uint64(due)
		})
		all := time.Since(cutoff)
		msgs, err := xl.Events(ctx, events.ExamSubjectPrefix+".*."+quiz.ID.String()+".*", 0, 3*due+1)
		if err != nil {
			t.Fatal(err)
		}
		var late []time.Duration
		for _, m := range msgs {
			if f := m.Event.Finalized; f != nil {
				late = append(late, f.FinalizedAt.Sub(cutoff))
			}
		}
		if len(late) != due {
			t.Fatalf("%d finalizations, want %d", len(late), due)
		}
		p50, p99, worst := percentiles(late)
		t.Logf("%d sessions expiring at once: finalized late by p50 %s, p99 %s, max %s; every attempt published %s after the cutoff",
			due, p50, p99, worst, all.Round(time.Millisecond))
	}
	t.Run("sessions expire at once", func(t *testing.T) {
		s.StartWorker(t, worker.Config{})
		expiring(t, 300)
		expiring(t, due)
	})

	t.Run("scanned due times", func(t *testing.T) {
		if _, err := s.DB.Exec(ctx, `CREATE TABLE timer_scan (session_id uuid PRIMARY KEY, due_at timestamptz NOT NULL, done_at timestamptz)`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.Exec(ctx, `CREATE INDEX timer_scan_open_idx ON timer_scan (due_at) WHERE done_at IS NULL`); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(4 * time.Second)
		rows := make([][]any, 0, due+notDue)
		for i := range due + notDue {
			d := at
			if i >= due {
				d = at.Add(time.Hour)
			}
			rows = append(rows, []any{uuid.New(), d})
		}
		if _, err := s.DB.CopyFrom(ctx, pgx.Identifier{"timer_scan"}, []string{"session_id", "due_at"}, pgx.CopyFromRows(rows)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.Exec(ctx, `ANALYZE timer_scan`); err != nil {
			t.Fatal(err)
		}
		for _, every := range []time.Duration{250 * time.Millisecond, time.Second} {
			if _, err := s.DB.Exec(ctx, `UPDATE timer_scan SET done_at = NULL, due_at = $1 WHERE due_at < $2`, at, at.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			late := make([]time.Duration, 0, due)
			var scans []time.Duration
			tick := time.NewTicker(every)
			for len(late) < due && time.Since(at) < 30*time.Second {
				<-tick.C
				for n := 500; n == 500; {
					t0 := time.Now()
					// Two workers' scans would not meet: each claims its rows.
					rs, err := s.DB.Query(ctx, `
						UPDATE timer_scan SET done_at = now() WHERE session_id IN (
							SELECT session_id FROM timer_scan WHERE done_at IS NULL AND due_at <= now()
							ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED)
						RETURNING session_id`)
					if err != nil {
						t.Fatal(err)
					}
					n = 0
					for rs.Next() {
						n++
					}
					rs.Close()
					scans = append(scans, time.Since(t0))
					for range n {
						late = append(late, time.Since(at))
					}
				}
			}
			tick.Stop()
			if len(late) != due {
				t.Fatalf("%d of %d due times claimed", len(late), due)
			}
			p50, p99, worst := percentiles(late)
			sp50, sp99, _ := percentiles(scans)
			t.Logf("scan every %s over %d rows: claimed late by p50 %s, p99 %s, max %s; a scan takes p50 %s, p99 %s",
				every, due+notDue, p50, p99, worst, sp50, sp99)
		}
	})
}
