package readmodel

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
)

var (
	student = uuid.MustParse("00000000-0000-4000-8000-000000000001")
	quizA   = uuid.MustParse("00000000-0000-4000-8000-0000000000aa")
	quizB   = uuid.MustParse("00000000-0000-4000-8000-0000000000bb")
	t0      = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
)

// fold is the k-th attempt of the student, at stream sequence seq.
func fold(seq uint64, k int, quiz uuid.UUID, score int) Fold {
	return Fold{Seq: seq, Event: events.AttemptSubmitted{
		AttemptID: uuid.NewSHA1(student, []byte{byte(k)}), StudentID: student, QuizID: quiz, Score: score, MaxScore: 10,
		SubmittedAt: t0.Add(time.Duration(k) * time.Second)}}
}

// An event is folded at most once, whatever order and however often
// its batch comes; the page keeps the newest, in order.
func TestApplyOnce(t *testing.T) {
	var s Student
	for _, f := range []Fold{fold(3, 3, quizA, 7), fold(1, 1, quizA, 2), fold(2, 2, quizB, 5), fold(3, 3, quizA, 7), fold(1, 1, quizA, 2)} {
		s.Apply(f)
	}
	if s.Total != 3 || len(s.Page) != 3 || s.Seq != 3 {
		t.Fatalf("total %d, page %d, seq %d; want 3, 3, 3", s.Total, len(s.Page), s.Seq)
	}
	if got := s.Apply(fold(2, 2, quizB, 5)); got != Skipped {
		t.Fatalf("a redelivered event: %v, want Skipped", got)
	}
	a, b := s.Progress[0], s.Progress[1]
	if a.QuizID != quizA || a.Attempts != 2 || a.Best != 7 || b.QuizID != quizB || b.Attempts != 1 || b.Best != 5 {
		t.Fatalf("progress %+v", s.Progress)
	}
	for i := 1; i < len(s.Page); i++ {
		if !s.Page[i-1].Before(s.Page[i]) {
			t.Fatalf("page out of order: %+v", s.Page)
		}
	}
	// Pruned at an ack floor of 2: sequences at or below it are skipped
	// without being listed.
	s.Prune(2)
	if s.Floor != 2 || len(s.Above) != 1 || s.Apply(fold(1, 1, quizA, 2)) != Skipped {
		t.Fatalf("after prune: floor %d, above %v", s.Floor, s.Above)
	}
}

// A failed tombstone is listed but not counted; its redriven event
// (another sequence, the same attempt) makes it recorded and counts once.
func TestApplyRedrive(t *testing.T) {
	var s Student
	f := fold(1, 1, quizA, 4)
	f.Failed = true
	s.Apply(f)
	if s.Total != 1 || len(s.Progress) != 0 || !s.Page[0].Failed {
		t.Fatalf("tombstone: %+v", s)
	}
	again := fold(9, 1, quizA, 4)
	s.Apply(again)
	s.Apply(fold(10, 1, quizA, 4)) // the same attempt once more: stored already
	if s.Total != 1 || len(s.Progress) != 1 || s.Progress[0].Attempts != 1 || s.Page[0].Failed {
		t.Fatalf("redriven: %+v", s)
	}
}

// Past the page, an attempt older than the page's last may be counted
// already: the value must be built again (Reseed), never guessed.
func TestApplyOlderThanPage(t *testing.T) {
	var s Student
	for k := range PageSize + 5 {
		s.Apply(fold(uint64(100+k), 100+k, quizA, 1))
	}
	if len(s.Page) != PageSize || s.Total != PageSize+5 || s.Complete() {
		t.Fatalf("page %d, total %d", len(s.Page), s.Total)
	}
	if got := s.Apply(fold(50, 1, quizA, 1)); got != Reseed {
		t.Fatalf("an attempt older than the page: %v, want Reseed", got)
	}
	if got := s.Apply(fold(200, 200, quizA, 1)); got != Folded || s.Page[0].SubmittedAt != t0.Add(200*time.Second) {
		t.Fatalf("a newer attempt: %v, page head %v", got, s.Page[0].SubmittedAt)
	}
	d, err := Decode(s.Encode())
	if err != nil || !d.Equal(&s) || d.Seq != s.Seq {
		t.Fatalf("round trip: %v", err)
	}
}

// A pass is added once, kept in exercise id order, and part of what Equal
// compares: the rebuild finds a value missing one.
func TestAddPass(t *testing.T) {
	course := uuid.New()
	a, b := uuid.MustParse("00000000-0000-0000-0000-00000000000a"), uuid.MustParse("00000000-0000-0000-0000-00000000000b")
	var s Student
	for _, e := range []uuid.UUID{b, a, b} {
		s.AddPass(Pass{CourseID: course, ExerciseID: e})
	}
	if s.AddPass(Pass{CourseID: course, ExerciseID: a}) {
		t.Error("a pass added twice reported new")
	}
	if len(s.Passed) != 2 || s.Passed[0].ExerciseID != a || s.Passed[1].ExerciseID != b {
		t.Errorf("passes %v, want %s then %s", s.Passed, a, b)
	}
	other := Student{Passed: s.Passed[:1]}
	if other.Equal(&s) {
		t.Error("values with other passes compare equal")
	}
}
