package readmodel

import (
	"bytes"
	"slices"
	"time"

	"github.com/google/uuid"
	segjson "github.com/segmentio/encoding/json"

	"github.com/quizstream/quizstream/events"
)

// CheckDetailMax is the most bytes a check's tests and output may take,
// encoded, for the model to hold them: a check's output may be 16 KiB and
// its tests a thousand, and PageSize checks must fit one value (64 KiB).
// A check over it is held without them (Cut), and a read that shows it
// goes to PostgreSQL. Most checks' output is a line or two.
const CheckDetailMax = 2 << 10

// Checks is a student's newest code checks, the value of the key
// "<student>.checks": the first page of the checks list and one more, as
// Student.Page is for attempts. A check's fold is a join (its status only
// moves forward, queued, running, then a verdict that never changes), so
// folding one twice or out of order changes nothing: it needs no stream
// sequences.
type Checks struct {
	V int `json:"v"`
	// Total counts the student's checks.
	Total int `json:"n"`
	// Page holds the newest checks (at most PageSize), submitted_at, then
	// id, descending.
	Page []Check `json:"p"`
}

// Check is one check as the checks list shows it.
type Check struct {
	ID          uuid.UUID          `json:"id"`
	ExerciseID  uuid.UUID          `json:"e"`
	Language    string             `json:"l"`
	Status      string             `json:"s"`
	SubmittedAt time.Time          `json:"t"`
	FinishedAt  *time.Time         `json:"f,omitempty"`
	Tests       []events.CheckTest `json:"x,omitempty"`
	Output      string             `json:"o,omitempty"`
	// Cut says Tests and Output are left out (over CheckDetailMax).
	Cut bool `json:"cut,omitempty"`
}

// Trim leaves c's tests and output out when they take more than
// CheckDetailMax: a function of the check alone, so that a folded value
// and one built from PostgreSQL agree.
func (c *Check) Trim() {
	tests, _ := segjson.Marshal(c.Tests)
	output, _ := segjson.Marshal(c.Output)
	if len(tests)+len(output) > CheckDetailMax {
		c.Tests, c.Output, c.Cut = nil, "", true
	}
}

// Before reports whether c sorts before o in the contract's order.
func (c Check) Before(o Check) bool {
	if !c.SubmittedAt.Equal(o.SubmittedAt) {
		return c.SubmittedAt.After(o.SubmittedAt)
	}
	return bytes.Compare(c.ID[:], o.ID[:]) > 0
}

// Complete reports whether the page holds every check of the student.
func (s *Checks) Complete() bool { return s.Total <= len(s.Page) }

// Find returns the page's entry for a check id.
func (s *Checks) Find(id uuid.UUID) (Check, bool) {
	i := slices.IndexFunc(s.Page, func(c Check) bool { return c.ID == id })
	if i < 0 {
		return Check{}, false
	}
	return s.Page[i], true
}

// Apply folds a stored check's state into s: a check further along than
// the page's copy replaces it, as in PostgreSQL. Reseed means a check
// older than the page, which may or may not be counted already: build
// the value again from PostgreSQL.
func (s *Checks) Apply(c Check) Result {
	c.Trim()
	if i := slices.IndexFunc(s.Page, func(x Check) bool { return x.ID == c.ID }); i >= 0 {
		if events.CheckRank(c.Status) <= events.CheckRank(s.Page[i].Status) {
			return Skipped
		}
		s.Page[i] = c
		return Folded
	}
	if !s.Complete() && !c.Before(s.Page[len(s.Page)-1]) {
		return Reseed
	}
	i, _ := slices.BinarySearchFunc(s.Page, c, func(a, b Check) int {
		if a.Before(b) {
			return -1
		}
		return 1
	})
	s.Page = slices.Insert(s.Page, i, c)
	if len(s.Page) > PageSize {
		s.Page = s.Page[:PageSize]
	}
	s.Total++
	return Folded
}

// Encode returns s's bytes.
func (s *Checks) Encode() []byte {
	s.V = version
	b, _ := segjson.Marshal(s) // of ids, numbers, times and strings: it cannot fail
	return b
}

// DecodeChecks returns the value data holds, or an error for one it
// cannot read (errVersion for one of another version).
func DecodeChecks(data []byte) (Checks, error) { return decode[Checks](data) }

// Equal reports whether s and o show the same checks.
func (s *Checks) Equal(o *Checks) bool {
	return s.Total == o.Total && slices.EqualFunc(s.Page, o.Page, func(a, b Check) bool {
		return a.ID == b.ID && a.ExerciseID == b.ExerciseID && a.Language == b.Language && a.Status == b.Status &&
			a.SubmittedAt.Equal(b.SubmittedAt) && equalTime(a.FinishedAt, b.FinishedAt) && a.Cut == b.Cut &&
			a.Output == b.Output && slices.Equal(a.Tests, b.Tests)
	})
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
