// Package content is quizstream's content file: courses, quizzes,
// questions, choices and their answer keys, and the settings of timed
// quizzes, as one JSON document with a stable id for every object
// (docs/content.md). It parses and validates a file as a whole, naming
// the path in the file of every problem, imports it into PostgreSQL
// (idempotent: objects are upserted by id) and exports the database's
// content as a file again, byte for byte what an import of it gives back.
package content

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/store"
)

// Version is the version of the format this build reads and writes.
// Adding an optional field (such as a course's exercises) keeps it; a
// change that an older build would misread raises it.
const Version = 1

// File is one content file.
type File struct {
	// Version is the format's version: Version.
	Version int      `json:"version"`
	Courses []Course `json:"courses"`
}

// Course is a course, its quizzes and its exercises, in display order.
// Exercises are optional (omitted when there are none, so files without
// them stay valid and export the same bytes).
type Course struct {
	ID          uuid.UUID  `json:"id"`
	Slug        string     `json:"slug"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Quizzes     []Quiz     `json:"quizzes"`
	Exercises   []Exercise `json:"exercises,omitempty"`
}

// Quiz is a quiz and its questions, in display order. A quiz with a
// TimeLimitS is timed (taken through sessions); the other settings apply
// to a timed quiz only. Absent settings are nil.
type Quiz struct {
	ID          uuid.UUID  `json:"id"`
	Title       string     `json:"title"`
	TimeLimitS  *int64     `json:"time_limit_s,omitempty"`
	OpensAt     *time.Time `json:"opens_at,omitempty"`
	ClosesAt    *time.Time `json:"closes_at,omitempty"`
	MaxSessions *int64     `json:"max_sessions,omitempty"`
	GraceS      *int64     `json:"grace_s,omitempty"`
	Questions   []Question `json:"questions"`
}

// Question is a question and its choices, in display order; exactly one
// choice is correct.
type Question struct {
	ID      uuid.UUID `json:"id"`
	Prompt  string    `json:"prompt"`
	Choices []Choice  `json:"choices"`
}

// Choice is one answer to a question; Correct marks the answer key (only
// the correct choice carries "correct": true in a file).
type Choice struct {
	ID      uuid.UUID `json:"id"`
	Text    string    `json:"text"`
	Correct bool      `json:"correct,omitempty"`
}

// Counts are how many objects of each kind a file holds.
type Counts struct {
	Courses   int `json:"courses"`
	Quizzes   int `json:"quizzes"`
	Questions int `json:"questions"`
	Choices   int `json:"choices"`
	Exercises int `json:"exercises"`
}

// Count returns how many objects of each kind f holds.
func (f *File) Count() Counts {
	var n Counts
	n.Courses = len(f.Courses)
	for _, c := range f.Courses {
		n.Quizzes += len(c.Quizzes)
		n.Exercises += len(c.Exercises)
		for _, q := range c.Quizzes {
			n.Questions += len(q.Questions)
			for _, qu := range q.Questions {
				n.Choices += len(qu.Choices)
			}
		}
	}
	return n
}

// Encode returns f as a content file: indented JSON, fields in a fixed
// order, times in UTC, ending in a newline. Equal files give equal bytes.
// It fails only if a value does not encode.
func Encode(f *File) ([]byte, error) {
	out := *f
	if out.Courses == nil {
		out.Courses = []Course{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode content file: %w", err)
	}
	return buf.Bytes(), nil
}

// FromStore returns courses (as store.LoadContent returns them) as a file.
func FromStore(courses []store.Course) *File {
	f := &File{Version: Version, Courses: make([]Course, 0, len(courses))}
	for _, c := range courses {
		fc := Course{ID: c.ID, Slug: c.Slug, Title: c.Title, Description: c.Description, Quizzes: make([]Quiz, 0, len(c.Quizzes)),
			Exercises: exercisesFromStore(c.Exercises)}
		for _, q := range c.Quizzes {
			fq := Quiz{ID: q.ID, Title: q.Title, Questions: make([]Question, 0, len(q.Questions))}
			if q.TimeLimit != 0 {
				fq.TimeLimitS = ptr(int64(q.TimeLimit / time.Second))
			}
			if !q.OpensAt.IsZero() {
				fq.OpensAt = ptr(q.OpensAt.UTC())
			}
			if !q.ClosesAt.IsZero() {
				fq.ClosesAt = ptr(q.ClosesAt.UTC())
			}
			if q.MaxSessions != 0 {
				fq.MaxSessions = ptr(int64(q.MaxSessions))
			}
			if q.Grace != nil {
				fq.GraceS = ptr(int64(*q.Grace / time.Second))
			}
			for _, qu := range q.Questions {
				fqu := Question{ID: qu.ID, Prompt: qu.Prompt, Choices: make([]Choice, 0, len(qu.Choices))}
				for _, ch := range qu.Choices {
					fqu.Choices = append(fqu.Choices, Choice(ch))
				}
				fq.Questions = append(fq.Questions, fqu)
			}
			fc.Quizzes = append(fc.Quizzes, fq)
		}
		f.Courses = append(f.Courses, fc)
	}
	return f
}

// Store returns f's content as the store writes it. f must be valid
// (Parse returned it).
func (f *File) Store() []store.Course {
	courses := make([]store.Course, 0, len(f.Courses))
	for _, c := range f.Courses {
		sc := store.Course{ID: c.ID, Slug: c.Slug, Title: c.Title, Description: c.Description, Exercises: exercisesToStore(c.ID, c.Exercises)}
		for _, q := range c.Quizzes {
			sq := store.Quiz{ID: q.ID, CourseID: c.ID, Title: q.Title}
			if q.TimeLimitS != nil {
				sq.TimeLimit = time.Duration(*q.TimeLimitS) * time.Second
			}
			if q.OpensAt != nil {
				sq.OpensAt = q.OpensAt.UTC()
			}
			if q.ClosesAt != nil {
				sq.ClosesAt = q.ClosesAt.UTC()
			}
			if q.MaxSessions != nil {
				sq.MaxSessions = int(*q.MaxSessions)
			}
			if q.GraceS != nil {
				sq.Grace = ptr(time.Duration(*q.GraceS) * time.Second)
			}
			for _, qu := range q.Questions {
				squ := store.Question{ID: qu.ID, Prompt: qu.Prompt}
				for _, ch := range qu.Choices {
					squ.Choices = append(squ.Choices, store.Choice(ch))
				}
				sq.Questions = append(sq.Questions, squ)
			}
			sc.Quizzes = append(sc.Quizzes, sq)
		}
		courses = append(courses, sc)
	}
	return courses
}

func ptr[T any](v T) *T { return &v }
