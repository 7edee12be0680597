package worker_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
)

// An event stored under a subject that is not its own (another student's,
// another attempt's, or the two swapped) is dead-lettered, and leaves no
// row at all: no attempt, no failed tombstone and no progress for either
// the student it names or the one whose subject it took. The events beside
// it are stored.
func TestMisaddressedEventIsDeadLettered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	student, victim := uuid.New(), uuid.New()
	good := f.event(t, student, 3, nil)
	f.publish(t, good)
	var forged []events.AttemptSubmitted
	for name, subject := range map[string]func(e events.AttemptSubmitted) string{
		"another student's subject": func(e events.AttemptSubmitted) string { return events.AttemptSubject(victim, e.AttemptID) },
		"another attempt's subject": func(e events.AttemptSubmitted) string { return events.AttemptSubject(e.StudentID, uuid.New()) },
		"student and attempt swapped": func(e events.AttemptSubmitted) string {
			return events.AttemptSubject(e.AttemptID, e.StudentID)
		},
	} {
		e := f.event(t, student, 10, nil) // full marks
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.js.Publish(t.Context(), subject(e), data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		forged = append(forged, e)
	}
	f.run(t, nil)

	if n := f.count(t, `SELECT count(*) FROM attempts`); n != 1 {
		t.Fatalf("%d attempt rows, want only the good event's", n)
	}
	if n := f.count(t, `SELECT count(*) FROM attempts WHERE id = $1 AND status = 'recorded'`, good.AttemptID); n != 1 {
		t.Fatal("the good event is not recorded")
	}
	if n := f.count(t, `SELECT coalesce(sum(attempts), 0) FROM progress`); n != 1 {
		t.Fatalf("progress counts %d attempts, want the good one", n)
	}
	letters, err := f.dl.List(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != len(forged) {
		t.Fatalf("%d dead letters, want %d", len(letters), len(forged))
	}
	for _, dl := range letters {
		if !strings.Contains(dl.Reason, "does not match") {
			t.Errorf("dead letter %d: reason %q", dl.Seq, dl.Reason)
		}
	}
}
