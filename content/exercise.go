package content

import (
	"regexp"

	"github.com/google/uuid"
	"github.com/quizstream/quizstream/store"
)

// Bounds of an exercise, in characters and counts.
const (
	MaxStatement = 20000
	MaxTestText  = 65536
	MaxTests     = 100
	MaxLanguages = 20
)

// Exercise is a programming exercise (API v1.1, "Code checks"): its
// statement, the languages a program may be written in (names of the
// checker's language map, such as "python" or "go") and its test cases,
// in order. Hidden test cases are never shown to students.
type Exercise struct {
	ID        uuid.UUID  `json:"id"`
	Title     string     `json:"title"`
	Statement string     `json:"statement"`
	Languages []string   `json:"languages"`
	Tests     []TestCase `json:"tests"`
}

// TestCase is one run of a program: its stdin and the stdout expected.
type TestCase struct {
	Stdin  string `json:"stdin"`
	Stdout string `json:"stdout"`
	Hidden bool   `json:"hidden,omitempty"`
}

// languagePattern is what a language name may be: lower case, as the
// checker's language map names them ("python", "c++", "csharp").
var languagePattern = regexp.MustCompile(`^[a-z][a-z0-9+#._-]{0,31}$`)

func (c *checker) exercise(path string, v any) *Exercise {
	o := c.object(path, v, "id", "title", "statement", "languages", "tests")
	if o == nil {
		return nil
	}
	e := &Exercise{ID: c.id(path, o), Languages: []string{}, Tests: []TestCase{}}
	e.Title = c.text(path, o, "title", true, MaxTitle)
	e.Statement = c.text(path, o, "statement", true, MaxStatement)
	langs := c.list(path, o, "languages")
	seen := map[string]bool{}
	for i, lv := range langs {
		p := index(join(path, "languages"), i)
		s, ok := lv.(string)
		switch {
		case !ok:
			c.add(p, "must be a string, not %s", kind(lv))
		case !languagePattern.MatchString(s):
			c.add(p, "%q: a language is a lower-case name of the checker's language map, such as \"python\" or \"go\"", s)
		case seen[s]:
			c.add(p, "%q is listed twice", s)
		default:
			seen[s] = true
			e.Languages = append(e.Languages, s)
		}
	}
	if len(langs) == 0 {
		c.add(join(path, "languages"), "at least one language")
	} else if len(langs) > MaxLanguages {
		c.add(join(path, "languages"), "at most %d languages", MaxLanguages)
	}
	tests := c.list(path, o, "tests")
	shown := 0
	for i, tv := range tests {
		p := index(join(path, "tests"), i)
		to := c.object(p, tv, "stdin", "stdout", "hidden")
		if to == nil {
			continue
		}
		t := TestCase{Stdin: c.text(p, to, "stdin", false, MaxTestText), Stdout: c.text(p, to, "stdout", false, MaxTestText),
			Hidden: c.boolean(p, to, "hidden")}
		if !t.Hidden {
			shown++
		}
		e.Tests = append(e.Tests, t)
	}
	switch {
	case len(tests) == 0:
		c.add(join(path, "tests"), "at least one test case")
	case len(tests) > MaxTests:
		c.add(join(path, "tests"), "at most %d test cases", MaxTests)
	}
	return e
}

// exercisesFromStore returns a course's exercises as a file holds them.
func exercisesFromStore(in []store.Exercise) []Exercise {
	if len(in) == 0 {
		return nil
	}
	out := make([]Exercise, 0, len(in))
	for _, e := range in {
		fe := Exercise{ID: e.ID, Title: e.Title, Statement: e.Statement, Languages: append([]string{}, e.Languages...),
			Tests: make([]TestCase, 0, len(e.Tests))}
		for _, t := range e.Tests {
			fe.Tests = append(fe.Tests, TestCase(t))
		}
		out = append(out, fe)
	}
	return out
}

// exercisesToStore returns a file's exercises of course as the store writes them.
func exercisesToStore(course uuid.UUID, in []Exercise) []store.Exercise {
	var out []store.Exercise
	for _, e := range in {
		se := store.Exercise{ID: e.ID, CourseID: course, Title: e.Title, Statement: e.Statement,
			Languages: append([]string{}, e.Languages...)}
		for _, t := range e.Tests {
			se.Tests = append(se.Tests, store.TestCase(t))
		}
		out = append(out, se)
	}
	return out
}
