package api

import (
	"fmt"
	"hash"
	"slices"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/store"
)

// Exercises (API v1.1, "Code checks") are content: built into the snapshot
// once, each body with its ETag, answered like quizzes. A hidden test case
// is in no body: only the shown ones are the exercise's examples.

// exerciseKey is what the API needs of an exercise: its body, and what a
// check's request is validated against.
type exerciseKey struct {
	id        uuid.UUID
	courseID  uuid.UUID
	languages []string
	res       *resource
}

// allows reports whether a program may be written in language.
func (e *exerciseKey) allows(language string) bool { return slices.Contains(e.languages, language) }

type courseExerciseJSON struct {
	ID        uuid.UUID `json:"id"`
	Title     string    `json:"title"`
	Languages []string  `json:"languages"`
}

type exampleJSON struct {
	Stdin  string `json:"stdin"`
	Stdout string `json:"stdout"`
}

type exerciseJSON struct {
	ID        uuid.UUID     `json:"id"`
	CourseID  uuid.UUID     `json:"course_id"`
	Title     string        `json:"title"`
	Statement string        `json:"statement"`
	Languages []string      `json:"languages"`
	Examples  []exampleJSON `json:"examples"`
}

// addExercises builds the bodies of a course's exercises into the
// snapshot, hashes into version what they hold (hidden test cases too: a
// change of one changes what a check runs) and returns the course's list.
func (snap *snapshot) addExercises(c store.Course, version hash.Hash) ([]courseExerciseJSON, error) {
	list := make([]courseExerciseJSON, 0, len(c.Exercises))
	for _, e := range c.Exercises {
		langs := append([]string{}, e.Languages...)
		list = append(list, courseExerciseJSON{ID: e.ID, Title: e.Title, Languages: langs})
		body := exerciseJSON{ID: e.ID, CourseID: c.ID, Title: e.Title, Statement: e.Statement, Languages: langs, Examples: []exampleJSON{}}
		for _, t := range e.Tests {
			fmt.Fprintf(version, "%s %q %q %t\n", e.ID, t.Stdin, t.Stdout, t.Hidden)
			if !t.Hidden {
				body.Examples = append(body.Examples, exampleJSON{Stdin: t.Stdin, Stdout: t.Stdout})
			}
		}
		res, err := newResource(body)
		if err != nil {
			return nil, fmt.Errorf("encode exercise %s: %w", e.ID, err)
		}
		version.Write(res.identity.body)
		snap.exercises[e.ID] = &exerciseKey{id: e.ID, courseID: c.ID, languages: langs, res: res}
	}
	return list, nil
}

func (s *Server) getExercise(c echo.Context) error {
	id, err := uuid.Parse(c.Param("exercise_id"))
	if err != nil {
		return notFound("exercise")
	}
	e, ok := s.content.Load().exercises[id]
	if !ok {
		return notFound("exercise")
	}
	return s.serveResource(c, e.res)
}
