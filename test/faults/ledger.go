package faults

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
)

// Ledger records what clients were told: the first 202 body of every
// attempt id, with the Idempotency-Key it was sent with. It is safe for
// concurrent use.
type Ledger struct {
	mu       sync.Mutex
	accepted map[string]accepted
}

type accepted struct {
	key  string
	body client.Attempt
}

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger {
	return &Ledger{accepted: map[string]accepted{}}
}

// Add records a 202 body sent for key; a repeat of an attempt id must tell
// the client the same facts as the first, or Add returns an error saying
// how not.
func (l *Ledger) Add(key string, b client.Attempt) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.accepted[b.AttemptID]
	if !ok {
		l.accepted[b.AttemptID] = accepted{key: key, body: b}
		return nil
	}
	p := prev.body
	if prev.key != key || p.QuizID != b.QuizID || p.StudentID != b.StudentID || p.Score != b.Score ||
		p.MaxScore != b.MaxScore || !p.SubmittedAt.Equal(b.SubmittedAt) {
		return fmt.Errorf("attempt %s: retry answered %+v (key %q), first answer was %+v (key %q)", b.AttemptID, b, key, p, prev.key)
	}
	return nil
}

// Len returns how many distinct attempts were accepted.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// AttemptID returns the id of the attempt accepted for key, or "" when
// none was.
func (l *Ledger) AttemptID(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, acc := range l.accepted {
		if acc.key == key {
			return id
		}
	}
	return ""
}

// Tally is what Check found.
type Tally struct {
	Acknowledged   int // distinct attempts a client got a 202 for
	Stored         int // attempt rows in the database
	Missing        int // acknowledged, not stored
	Duplicated     int // (student, Idempotency-Key) pairs stored more than once
	Unacknowledged int // stored, never acknowledged to a client
	Mismatched     int // stored with other facts than the 202 body said
}

// String returns the counts in a sentence.
func (f Tally) String() string {
	return fmt.Sprintf("acknowledged %d, stored %d, missing %d, duplicated %d, stored but never acknowledged %d, differing from the 202 body %d",
		f.Acknowledged, f.Stored, f.Missing, f.Duplicated, f.Unacknowledged, f.Mismatched)
}

// Check compares the database with the ledger: one row per accepted
// attempt and no other, none stored twice for one (student,
// Idempotency-Key), each with the score and submitted_at its client was
// given, and progress rows exactly as those attempts make them. It fails t
// on any difference and returns the counts.
func Check(t testing.TB, s *apptest.Stack, l *Ledger) Tally {
	t.Helper()
	var tally Tally
	ctx := t.Context()
	l.mu.Lock()
	defer l.mu.Unlock()

	rows, _ := s.DB.Query(ctx, `SELECT student_id::text, coalesce(idempotency_key, '<none>'), count(*)
		FROM attempts GROUP BY 1, 2 HAVING count(*) > 1`)
	var student, key string
	var count int
	if _, err := pgx.ForEachRow(rows, []any{&student, &key, &count}, func() error {
		t.Errorf("student %s, Idempotency-Key %q: stored %d times", student, key, count)
		tally.Duplicated++
		return nil
	}); err != nil {
		t.Fatalf("count duplicates: %v", err)
	}

	type row struct {
		id, student, quiz, key, status string
		score, maxScore                int
		submittedAt                    time.Time
	}
	var r row
	stored := map[string]row{}
	rows, _ = s.DB.Query(ctx, `SELECT id::text, student_id::text, quiz_id::text, coalesce(idempotency_key, ''),
		status, score, max_score, submitted_at FROM attempts`)
	if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.student, &r.quiz, &r.key, &r.status, &r.score, &r.maxScore, &r.submittedAt}, func() error {
		stored[r.id] = r
		return nil
	}); err != nil {
		t.Fatalf("read attempts: %v", err)
	}
	tally.Acknowledged, tally.Stored = len(l.accepted), len(stored)
	if len(stored) != len(l.accepted) {
		t.Errorf("stored attempts = %d, accepted (distinct 202s) = %d", len(stored), len(l.accepted))
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for id, got := range stored {
		acc, ok := l.accepted[id]
		if !ok {
			tally.Unacknowledged++
			report("stored attempt %s (student %s, key %q) was never accepted", id, got.student, got.key)
			continue
		}
		b := acc.body
		if got.student != b.StudentID || got.quiz != b.QuizID || got.key != acc.key || got.status != store.StatusRecorded ||
			got.score != b.Score || got.maxScore != b.MaxScore || !got.submittedAt.Equal(b.SubmittedAt) {
			tally.Mismatched++
			report("attempt %s: stored {student %s quiz %s key %q status %s score %d/%d submitted_at %s}, client was told {student %s quiz %s key %q score %d/%d submitted_at %s}",
				id, got.student, got.quiz, got.key, got.status, got.score, got.maxScore, got.submittedAt.UTC().Format(time.RFC3339Nano),
				b.StudentID, b.QuizID, acc.key, b.Score, b.MaxScore, b.SubmittedAt.UTC().Format(time.RFC3339Nano))
		}
	}
	for id, acc := range l.accepted {
		if _, ok := stored[id]; !ok {
			tally.Missing++
			report("accepted attempt %s (key %q, 202 at %s) was not stored", id, acc.key, acc.body.SubmittedAt.Format(time.RFC3339Nano))
		}
	}

	type progress struct {
		course         string
		attempts, best int
	}
	courseOf := map[string]string{}
	for _, q := range s.Quizzes {
		courseOf[q.ID.String()] = q.CourseID.String()
	}
	want := map[[2]string]progress{}
	for _, acc := range l.accepted {
		k := [2]string{acc.body.StudentID, acc.body.QuizID}
		p := want[k]
		p.course = courseOf[acc.body.QuizID]
		p.attempts++
		p.best = max(p.best, acc.body.Score)
		want[k] = p
	}
	got := map[[2]string]progress{}
	var quiz string
	var p progress
	rows, _ = s.DB.Query(ctx, `SELECT student_id::text, quiz_id::text, course_id::text, attempts, best_score FROM progress`)
	if _, err := pgx.ForEachRow(rows, []any{&student, &quiz, &p.course, &p.attempts, &p.best}, func() error {
		got[[2]string{student, quiz}] = p
		return nil
	}); err != nil {
		t.Fatalf("read progress: %v", err)
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("progress of student %s, quiz %s = %+v, want %+v", k[0], k[1], g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("progress of student %s, quiz %s = %+v, but no attempt of theirs was accepted", k[0], k[1], g)
		}
	}
	return tally
}
