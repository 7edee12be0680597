// Package readmodel is the student read model: values per student in a
// JetStream key-value bucket (streams.ReadModel), holding what the
// student reads most (progress per quiz, the newest attempts; under keys
// of their own, exam sessions and the newest checks), folded by the
// workers after each commit and read by the API with one direct get. PostgreSQL stays the system of record: a
// read the model cannot answer falls back to it. Knows JetStream and
// events, not SQL (docs/architecture.md, "Read model").
package readmodel

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	segjson "github.com/segmentio/encoding/json"

	"github.com/quizstream/quizstream/events"
)

// PageSize is how many of a student's newest attempts a value keeps: the
// first page of the attempts list (20 by default) and one more, which
// says whether a next page exists. A student with at most PageSize
// attempts has every one of them in the model, so any page, filter or
// cursor of theirs is answered from it.
const PageSize = 21

// version is the encoding's version; a value of another is read as missing.
const version = 1

// Student is one student's value: what the projection folded, and which
// stream sequences that covers.
type Student struct {
	V int `json:"v"`
	// Seq is the highest stream sequence folded: it never decreases from
	// one value of a key to the next, and readers may check that.
	Seq uint64 `json:"seq"`
	// Floor says every event of the student at or below it is in the
	// value; Above lists the sequences above Floor folded too. An event
	// at or below Floor or in Above is folded at most once (skipped).
	Floor uint64   `json:"floor"`
	Above []uint64 `json:"above,omitempty"`
	// Total counts the student's attempts (recorded and failed).
	Total int `json:"total"`
	// Progress holds one entry per quiz with a recorded attempt, in quiz
	// id order.
	Progress []Quiz `json:"progress"`
	// Page holds the newest attempts (at most PageSize), in the HTTP
	// contract's order: submitted_at, then id, descending.
	Page []Attempt `json:"page"`
	// Passed holds the exercises the student passed (code checks, their
	// own stream), in exercise id order. A pass is never undone, so
	// adding one again changes nothing: it needs no sequence.
	Passed []Pass `json:"x,omitempty"`
}

// Pass is an exercise a student passed, in its course.
type Pass struct {
	CourseID   uuid.UUID `json:"c"`
	ExerciseID uuid.UUID `json:"e"`
}

// AddPass adds p to the student's passes and reports whether it was new.
func (s *Student) AddPass(p Pass) bool {
	i, found := slices.BinarySearchFunc(s.Passed, p, func(a, b Pass) int { return bytes.Compare(a.ExerciseID[:], b.ExerciseID[:]) })
	if found {
		return false
	}
	s.Passed = slices.Insert(s.Passed, i, p)
	return true
}

// Quiz is a student's recorded attempts at one quiz.
type Quiz struct {
	QuizID   uuid.UUID `json:"q"`
	CourseID uuid.UUID `json:"c"`
	Attempts int       `json:"n"`
	Best     int       `json:"b"`
}

// Attempt is one stored attempt as the attempts list shows it.
type Attempt struct {
	ID          uuid.UUID `json:"id"`
	QuizID      uuid.UUID `json:"q"`
	Score       int       `json:"s"`
	MaxScore    int       `json:"m"`
	Failed      bool      `json:"f,omitempty"`
	SubmittedAt time.Time `json:"t"`
}

// Before reports whether a sorts before b in the contract's order.
func (a Attempt) Before(b Attempt) bool {
	if !a.SubmittedAt.Equal(b.SubmittedAt) {
		return a.SubmittedAt.After(b.SubmittedAt)
	}
	return bytes.Compare(a.ID[:], b.ID[:]) > 0
}

// Complete reports whether the page holds every attempt of the student.
func (s *Student) Complete() bool { return s.Total <= len(s.Page) }

// Find returns the page's entry for an attempt id.
func (s *Student) Find(id uuid.UUID) (Attempt, bool) {
	for _, a := range s.Page {
		if a.ID == id {
			return a, true
		}
	}
	return Attempt{}, false
}

// Fold is one event for the projection: an attempt stored at Seq, as a
// failed tombstone when Failed.
type Fold struct {
	Seq    uint64
	Event  events.AttemptSubmitted
	Failed bool
}

// Result is what Apply did with a Fold.
type Result int

const (
	// Folded means the value changed.
	Folded Result = iota
	// Skipped means the event was folded before.
	Skipped
	// Reseed means the value cannot fold it exactly (an attempt older
	// than the page, which may or may not be counted): build the value
	// again from PostgreSQL.
	Reseed
)

// Apply folds f into s, at most once per stream sequence.
func (s *Student) Apply(f Fold) Result {
	if f.Seq <= s.Floor || slices.Contains(s.Above, f.Seq) {
		return Skipped
	}
	e := f.Event
	entry := Attempt{ID: e.AttemptID, QuizID: e.QuizID, Score: e.Score, MaxScore: e.MaxScore, Failed: f.Failed,
		SubmittedAt: e.SubmittedAt.UTC()}
	if i := slices.IndexFunc(s.Page, func(a Attempt) bool { return a.ID == e.AttemptID }); i >= 0 {
		// Stored before: only a failed tombstone becoming recorded (a
		// redriven event) changes it, as in PostgreSQL.
		if s.Page[i].Failed && !f.Failed {
			s.Page[i] = entry
			s.count(e)
		}
		s.mark(f.Seq)
		return Folded
	}
	if !s.Complete() && !entry.Before(s.Page[len(s.Page)-1]) {
		return Reseed // older than the page: it may be stored already
	}
	i, _ := slices.BinarySearchFunc(s.Page, entry, func(a, b Attempt) int {
		if a.Before(b) {
			return -1
		}
		return 1
	})
	s.Page = slices.Insert(s.Page, i, entry)
	if len(s.Page) > PageSize {
		s.Page = s.Page[:PageSize]
	}
	s.Total++
	if !f.Failed {
		s.count(e)
	}
	s.mark(f.Seq)
	return Folded
}

func (s *Student) count(e events.AttemptSubmitted) {
	for i := range s.Progress {
		if s.Progress[i].QuizID == e.QuizID {
			s.Progress[i].Attempts++
			s.Progress[i].Best = max(s.Progress[i].Best, e.Score)
			return
		}
	}
	i, _ := slices.BinarySearchFunc(s.Progress, e.QuizID, func(q Quiz, id uuid.UUID) int { return bytes.Compare(q.QuizID[:], id[:]) })
	s.Progress = slices.Insert(s.Progress, i, Quiz{QuizID: e.QuizID, CourseID: e.CourseID, Attempts: 1, Best: e.Score})
}

func (s *Student) mark(seq uint64) {
	s.Above = append(s.Above, seq)
	s.Seq = max(s.Seq, seq)
}

// Prune raises Floor to floor, a reading of the attempts consumer's ack
// floor: every event at or below it was acknowledged, and a worker
// acknowledges only after folding, so the value holds it. Above keeps
// only what is above.
func (s *Student) Prune(floor uint64) {
	if floor <= s.Floor {
		return
	}
	s.Floor = floor
	s.Above = slices.DeleteFunc(s.Above, func(seq uint64) bool { return seq <= floor })
	s.Seq = max(s.Seq, floor)
}

// errVersion means a value of another encoding version.
var errVersion = errors.New("readmodel: value of another version")

// Encode returns s's bytes. The values are encoded and decoded with
// github.com/segmentio/encoding (as events are): a worker decodes and
// encodes one per student a batch, and encoding/json took a seventh of
// a worker's CPU doing it under POST load.
func (s *Student) Encode() []byte {
	s.V = version
	b, _ := segjson.Marshal(s) // of numbers, times and ids: it cannot fail
	return b
}

// Decode returns the value data holds, or an error for one it cannot read.
func Decode(data []byte) (Student, error) { return decode[Student](data) }

// value is a value of the model's keys: a student's attempts, sessions or
// checks, each with its encoding's version.
type value[T any] interface {
	*T
	version() int
}

func (s *Student) version() int  { return s.V }
func (s *Sessions) version() int { return s.V }
func (s *Checks) version() int   { return s.V }

// decode returns the value of type T data holds, or an error for one it
// cannot read (errVersion for one of another version).
func decode[T any, P value[T]](data []byte) (T, error) {
	var v T
	if err := segjson.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("readmodel: decode: %w", err)
	}
	if P(&v).version() != version {
		var zero T
		return zero, errVersion
	}
	return v, nil
}

// Equal reports whether s and o show a student the same: their attempt
// count, progress, page and passes (not the sequences they cover). A rebuild
// compares the model with PostgreSQL so.
func (s *Student) Equal(o *Student) bool {
	return s.Total == o.Total && slices.Equal(s.Progress, o.Progress) && slices.Equal(s.Passed, o.Passed) &&
		slices.EqualFunc(s.Page, o.Page, func(a, b Attempt) bool {
			return a.ID == b.ID && a.QuizID == b.QuizID && a.Score == b.Score && a.MaxScore == b.MaxScore &&
				a.Failed == b.Failed && a.SubmittedAt.Equal(b.SubmittedAt)
		})
}
