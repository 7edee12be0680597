package readmodel

import (
	"bytes"
	"slices"
	"time"

	"github.com/google/uuid"
	segjson "github.com/segmentio/encoding/json"

	"github.com/quizstream/quizstream/events"
)

// SessionsMaxBytes is the most an encoded Sessions value may take; the
// bucket's messages are capped at 64 KiB (streams.ReadModel). About 400
// saved answers fit: a student with more sessions and answers than that
// is held as Over, and read from PostgreSQL.
const SessionsMaxBytes = 56 << 10

// Sessions is a student's exam sessions, the value of the key
// "<student>.sessions": every session of the student, each as the
// sessions projection stores it. Its folds are joins (a start and a final
// are set once, a question keeps its highest seq), so, unlike attempts,
// folding an event twice or out of order changes nothing: it needs no
// stream sequences.
type Sessions struct {
	V int `json:"v"`
	// Over says the sessions do not fit a value: List is empty and every
	// read of the student's sessions goes to PostgreSQL.
	Over bool `json:"over,omitempty"`
	// List holds the sessions in id order, including those whose start is
	// not folded yet (a save stored before its start): reads skip those.
	List []Session `json:"s"`
}

// Session is one exam session.
type Session struct {
	ID      uuid.UUID     `json:"id"`
	Started *SessionStart `json:"st,omitempty"`
	// Answers holds each question's save with the highest seq, in
	// question id order.
	Answers []SavedAnswer `json:"a,omitempty"`
	Final   *SessionFinal `json:"f,omitempty"`
}

// SessionStart is what a session's start says that its reads show.
type SessionStart struct {
	QuizID    uuid.UUID `json:"q"`
	CourseID  uuid.UUID `json:"c"`
	StartedAt time.Time `json:"t"`
	Deadline  time.Time `json:"d"`
	GraceS    int       `json:"g"`
}

// SavedAnswer is a question's winning save.
type SavedAnswer struct {
	QuestionID uuid.UUID  `json:"q"`
	ChoiceID   *uuid.UUID `json:"c"`
	Seq        int64      `json:"s"`
	SavedAt    time.Time  `json:"t"`
}

// SessionFinal is how a session ended.
type SessionFinal struct {
	By          string    `json:"by"`
	AttemptID   uuid.UUID `json:"at"`
	SubmittedAt time.Time `json:"t"`
}

// Find returns the session with an id.
func (s *Sessions) Find(id uuid.UUID) (Session, bool) {
	i, ok := slices.BinarySearchFunc(s.List, id, func(x Session, id uuid.UUID) int { return bytes.Compare(x.ID[:], id[:]) })
	if !ok {
		return Session{}, false
	}
	return s.List[i], true
}

// session returns the entry of an id, inserted when new.
func (s *Sessions) session(id uuid.UUID) *Session {
	i, ok := slices.BinarySearchFunc(s.List, id, func(x Session, id uuid.UUID) int { return bytes.Compare(x.ID[:], id[:]) })
	if !ok {
		s.List = slices.Insert(s.List, i, Session{ID: id})
	}
	return &s.List[i]
}

// Apply folds a stored session event into s. Reseed means the value
// cannot fold it exactly: a session's start when the value does not hold
// the session started (PostgreSQL may hold saves of it stored before its
// start, which a value built from PostgreSQL before the start could not
// name), or any event of an Over value.
func (s *Sessions) Apply(e events.ExamEvent) Result {
	if s.Over {
		return Reseed
	}
	switch {
	case e.Started != nil:
		st := e.Started
		if x, ok := s.Find(st.SessionID); ok && x.Started != nil {
			return Skipped
		}
		return Reseed
	case e.Saved != nil:
		a := e.Saved
		x := s.session(a.SessionID)
		save := SavedAnswer{QuestionID: a.QuestionID, ChoiceID: a.ChoiceID, Seq: a.Seq, SavedAt: a.SavedAt.UTC()}
		i, ok := slices.BinarySearchFunc(x.Answers, a.QuestionID, func(y SavedAnswer, id uuid.UUID) int { return bytes.Compare(y.QuestionID[:], id[:]) })
		switch {
		case !ok:
			x.Answers = slices.Insert(x.Answers, i, save)
		case a.Seq > x.Answers[i].Seq: // as PostgreSQL: only a higher seq replaces a save
			x.Answers[i] = save
		default:
			return Skipped
		}
		return Folded
	case e.Finalized != nil:
		f := e.Finalized
		x := s.session(f.SessionID)
		if x.Final != nil {
			return Skipped
		}
		x.Final = &SessionFinal{By: f.By, AttemptID: f.AttemptID, SubmittedAt: f.SubmittedAt.UTC()}
		return Folded
	}
	return Skipped
}

// Fit makes s Over (and empty) when its encoding is over SessionsMaxBytes,
// and reports whether it fits.
func (s *Sessions) Fit() bool {
	if !s.Over && len(s.Encode()) > SessionsMaxBytes {
		s.Over, s.List = true, nil
	}
	return !s.Over
}

// Encode returns s's bytes.
func (s *Sessions) Encode() []byte {
	s.V = version
	b, _ := segjson.Marshal(s) // of ids, numbers, times and short strings: it cannot fail
	return b
}

// DecodeSessions returns the value data holds, or an error for one it
// cannot read (errVersion for one of another version).
func DecodeSessions(data []byte) (Sessions, error) { return decode[Sessions](data) }

// Equal reports whether s and o show the same sessions: the started ones
// (a save or final folded before its start is not shown, and a value
// built from PostgreSQL does not hold it).
func (s *Sessions) Equal(o *Sessions) bool {
	if s.Over || o.Over {
		return s.Over == o.Over
	}
	return slices.EqualFunc(s.started(), o.started(), func(a, b Session) bool {
		return a.ID == b.ID && equalStart(a.Started, b.Started) && equalFinal(a.Final, b.Final) &&
			slices.EqualFunc(a.Answers, b.Answers, func(x, y SavedAnswer) bool {
				return x.QuestionID == y.QuestionID && x.Seq == y.Seq && x.SavedAt.Equal(y.SavedAt) &&
					((x.ChoiceID == nil && y.ChoiceID == nil) || (x.ChoiceID != nil && y.ChoiceID != nil && *x.ChoiceID == *y.ChoiceID))
			})
	})
}

func (s *Sessions) started() []Session {
	return slices.DeleteFunc(slices.Clone(s.List), func(x Session) bool { return x.Started == nil })
}

func equalStart(a, b *SessionStart) bool {
	return a.QuizID == b.QuizID && a.CourseID == b.CourseID && a.StartedAt.Equal(b.StartedAt) &&
		a.Deadline.Equal(b.Deadline) && a.GraceS == b.GraceS
}

func equalFinal(a, b *SessionFinal) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.By == b.By && a.AttemptID == b.AttemptID && a.SubmittedAt.Equal(b.SubmittedAt)
}
