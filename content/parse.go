package content

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxErrors is how many problems Parse reports at most; past it, the
// error says how many more there were.
const MaxErrors = 50

// Bounds of a file's text fields, in characters.
const (
	MaxSlug        = 100
	MaxTitle       = 500
	MaxDescription = 10000
	MaxPrompt      = 10000
	MaxChoiceText  = 2000
)

// Problem is one thing wrong with a file, at a path in it, such as
// "courses[3].quizzes[0].questions[2]".
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// InvalidError is a file that does not validate: the first MaxErrors
// problems, in file order, and how many more there were.
type InvalidError struct {
	Problems []Problem `json:"problems"`
	More     int       `json:"more"`
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	n := len(e.Problems) + e.More
	fmt.Fprintf(&b, "content file: %d problem", n)
	if n != 1 {
		b.WriteString("s")
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more", e.More)
	}
	return b.String()
}

// Parse returns the file data holds, validated as a whole: every object's
// fields and types, ids that are UUIDs and unique across the file, slugs
// unique, exactly one correct choice per question, the settings of timed
// quizzes within their ranges. It returns an *InvalidError naming every
// problem (up to MaxErrors) by its path in the file; nothing it accepts
// is refused by the database for its shape.
func Parse(data []byte) (*File, error) {
	tree, err := parseTree(data)
	if err != nil {
		return nil, &InvalidError{Problems: []Problem{{Message: err.Error()}}}
	}
	c := &checker{ids: map[uuid.UUID]string{}, slugs: map[string]string{}}
	f := c.file(tree)
	if len(c.problems) > 0 {
		return nil, &InvalidError{Problems: c.problems, More: c.more}
	}
	return f, nil
}

// object is a JSON object with its keys in file order.
type object struct {
	keys []string
	vals map[string]any
}

// parseTree decodes data into objects, []any, json.Number, string, bool
// and nil, refusing a key given twice in one object and anything after
// the document.
func parseTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, syntaxError(data, dec, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, syntaxError(data, dec, &posError{end, errors.New("more data after the document")})
	}
	return v, nil
}

// posError is an error at an offset of the document.
type posError struct {
	off int64
	err error
}

func (e *posError) Error() string { return e.err.Error() }

func syntaxError(data []byte, dec *json.Decoder, err error) error {
	off := int(dec.InputOffset())
	var se *json.SyntaxError
	var pe *posError
	switch {
	case errors.As(err, &se):
		off = int(se.Offset)
	case errors.As(err, &pe):
		off = int(pe.off)
		// The offset is where the previous token ended: skip to this one.
		for off < len(data) && strings.ContainsRune(" \t\r\n,:", rune(data[off])) {
			off++
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = errors.New("the document ends too early")
	}
	off = min(off, len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("not a JSON document: line %d, column %d: %v", line, col, err)
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{vals: map[string]any{}}
			for dec.More() {
				at := dec.InputOffset()
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := o.vals[k]; dup {
					return nil, &posError{at, fmt.Errorf("key %q given twice in one object", k)}
				}
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k)
				o.vals[k] = v
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %q", t)
	default:
		return t, nil
	}
}

// checker walks a tree, building the file and collecting problems.
type checker struct {
	problems []Problem
	more     int
	ids      map[uuid.UUID]string // path of the object holding each id
	slugs    map[string]string
}

func (c *checker) add(path, format string, args ...any) {
	if len(c.problems) >= MaxErrors {
		c.more++
		return
	}
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// kind names a JSON value's type, for messages.
func kind(v any) string {
	switch v.(type) {
	case *object:
		return "an object"
	case []any:
		return "a list"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "true or false"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// object returns v as an object with only the known keys, or nil (with a
// problem) when it is not one. Unknown keys are problems of their own.
func (c *checker) object(path string, v any, known ...string) *object {
	o, ok := v.(*object)
	if !ok {
		c.add(path, "must be an object, not %s", kind(v))
		return nil
	}
	for _, k := range o.keys {
		found := false
		for _, kk := range known {
			found = found || k == kk
		}
		if !found {
			c.add(join(path, k), "unknown field (known: %s)", strings.Join(known, ", "))
		}
	}
	return o
}

// list returns the list at key; a missing or null list is empty.
func (c *checker) list(path string, o *object, key string) []any {
	v, ok := o.vals[key]
	if !ok || v == nil {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		c.add(join(path, key), "must be a list, not %s", kind(v))
	}
	return a
}

// text returns the string at key, required to hold 1 to max characters
// (0 to max when optional) that PostgreSQL can store.
func (c *checker) text(path string, o *object, key string, required bool, max int) string {
	p := join(path, key)
	v, ok := o.vals[key]
	if !ok || v == nil {
		if required {
			c.add(p, "missing")
		}
		return ""
	}
	s, ok := v.(string)
	switch {
	case !ok:
		c.add(p, "must be a string, not %s", kind(v))
	case required && strings.TrimSpace(s) == "":
		c.add(p, "must not be empty")
	case utf8.RuneCountInString(s) > max:
		c.add(p, "longer than %d characters", max)
	case strings.ContainsRune(s, 0):
		c.add(p, "holds a NUL character, which PostgreSQL does not store")
	}
	return s
}

// id returns the UUID at key, required, not nil and not used by another
// object of the file.
func (c *checker) id(path string, o *object) uuid.UUID {
	p := join(path, "id")
	v, ok := o.vals["id"]
	if !ok || v == nil {
		c.add(p, "missing: every object has a stable id (a UUID)")
		return uuid.Nil
	}
	s, ok := v.(string)
	if !ok {
		c.add(p, "must be a UUID string, not %s", kind(v))
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		c.add(p, "%q is not a UUID (like 6f1c0d52-7d8e-4b8a-9d0e-1a2b3c4d5e6f)", s)
		return uuid.Nil
	}
	if id == uuid.Nil {
		c.add(p, "must not be the nil UUID")
		return uuid.Nil
	}
	if other, dup := c.ids[id]; dup {
		c.add(p, "%s is also the id of %s", id, other)
		return id
	}
	c.ids[id] = path
	return id
}

// integer returns the whole number at key, nil when absent or null, or
// nil with a problem when it is not a whole number in [lo, hi].
func (c *checker) integer(path string, o *object, key string, lo, hi int64) *int64 {
	p := join(path, key)
	v, ok := o.vals[key]
	if !ok || v == nil {
		return nil
	}
	n, ok := v.(json.Number)
	if !ok {
		c.add(p, "must be a whole number, not %s", kind(v))
		return nil
	}
	i, err := n.Int64()
	if err != nil {
		c.add(p, "must be a whole number, not %s", n)
		return nil
	}
	if i < lo || i > hi {
		c.add(p, "must be from %d to %d, not %d", lo, hi, i)
		return nil
	}
	return &i
}

// moment returns the RFC 3339 time at key, nil when absent or null.
func (c *checker) moment(path string, o *object, key string) *time.Time {
	p := join(path, key)
	v, ok := o.vals[key]
	if !ok || v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		c.add(p, "must be an RFC 3339 time string, not %s", kind(v))
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		c.add(p, "%q is not an RFC 3339 time (like 2027-01-31T08:00:00Z)", s)
		return nil
	}
	if t.Nanosecond()%1000 != 0 {
		c.add(p, "more precise than a microsecond, which PostgreSQL keeps")
		return nil
	}
	t = t.UTC()
	return &t
}

func (c *checker) boolean(path string, o *object, key string) bool {
	v, ok := o.vals[key]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		c.add(join(path, key), "must be true or false, not %s", kind(v))
	}
	return b
}

// slugPattern is what a slug may hold: URL-safe characters.
var slugPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]*$`)

func (c *checker) file(v any) *File {
	o := c.object("", v, "version", "courses")
	if o == nil {
		return nil
	}
	f := &File{}
	if vv := c.integer("", o, "version", math.MinInt64, math.MaxInt64); vv == nil {
		if _, ok := o.vals["version"]; !ok {
			c.add("version", "missing; this build reads version %d", Version)
		}
	} else if *vv != Version {
		c.add("version", "%d: this build reads version %d", *vv, Version)
	} else {
		f.Version = Version
	}
	if _, ok := o.vals["courses"]; !ok {
		c.add("courses", "missing")
	}
	for i, cv := range c.list("", o, "courses") {
		if course := c.course(index("courses", i), cv); course != nil {
			f.Courses = append(f.Courses, *course)
		}
	}
	return f
}

// course checks one course, its quizzes and its exercises (exercise.go).
func (c *checker) course(path string, v any) *Course {
	o := c.object(path, v, "id", "slug", "title", "description", "quizzes", "exercises")
	if o == nil {
		return nil
	}
	course := &Course{ID: c.id(path, o)}
	course.Slug = c.text(path, o, "slug", true, MaxSlug)
	if course.Slug != "" {
		if !slugPattern.MatchString(course.Slug) {
			c.add(join(path, "slug"), "%q: a slug holds letters, digits, '.', '_', '~' and '-', and starts with a letter or digit", course.Slug)
		} else if other, dup := c.slugs[course.Slug]; dup {
			c.add(join(path, "slug"), "%q is also the slug of %s", course.Slug, other)
		} else {
			c.slugs[course.Slug] = path
		}
	}
	course.Title = c.text(path, o, "title", true, MaxTitle)
	course.Description = c.text(path, o, "description", false, MaxDescription)
	course.Quizzes = []Quiz{}
	for i, qv := range c.list(path, o, "quizzes") {
		if q := c.quiz(index(join(path, "quizzes"), i), qv); q != nil {
			course.Quizzes = append(course.Quizzes, *q)
		}
	}
	for i, ev := range c.list(path, o, "exercises") {
		if e := c.exercise(index(join(path, "exercises"), i), ev); e != nil {
			course.Exercises = append(course.Exercises, *e)
		}
	}
	return course
}

func (c *checker) quiz(path string, v any) *Quiz {
	o := c.object(path, v, "id", "title", "time_limit_s", "opens_at", "closes_at", "max_sessions", "grace_s", "questions")
	if o == nil {
		return nil
	}
	q := &Quiz{ID: c.id(path, o)}
	q.Title = c.text(path, o, "title", true, MaxTitle)
	q.TimeLimitS = c.integer(path, o, "time_limit_s", 1, math.MaxInt32)
	q.OpensAt = c.moment(path, o, "opens_at")
	q.ClosesAt = c.moment(path, o, "closes_at")
	q.MaxSessions = c.integer(path, o, "max_sessions", 1, math.MaxInt32)
	q.GraceS = c.integer(path, o, "grace_s", 0, math.MaxInt32)
	if _, timed := o.vals["time_limit_s"]; !timed || o.vals["time_limit_s"] == nil {
		for _, k := range []string{"opens_at", "closes_at", "max_sessions", "grace_s"} {
			if v, ok := o.vals[k]; ok && v != nil {
				c.add(join(path, k), "only a timed quiz (one with time_limit_s) takes it")
			}
		}
	}
	if q.OpensAt != nil && q.ClosesAt != nil && !q.OpensAt.Before(*q.ClosesAt) {
		c.add(join(path, "closes_at"), "must be after opens_at")
	}
	questions := c.list(path, o, "questions")
	if len(questions) == 0 {
		if _, ok := o.vals["questions"].([]any); ok || o.vals["questions"] == nil {
			c.add(path, "no questions")
		}
	}
	q.Questions = []Question{}
	for i, qv := range questions {
		if qu := c.question(index(join(path, "questions"), i), qv); qu != nil {
			q.Questions = append(q.Questions, *qu)
		}
	}
	return q
}

func (c *checker) question(path string, v any) *Question {
	o := c.object(path, v, "id", "prompt", "choices")
	if o == nil {
		return nil
	}
	qu := &Question{ID: c.id(path, o)}
	qu.Prompt = c.text(path, o, "prompt", true, MaxPrompt)
	choices := c.list(path, o, "choices")
	qu.Choices = []Choice{}
	var correct []string
	for i, cv := range choices {
		cp := index(join(path, "choices"), i)
		co := c.object(cp, cv, "id", "text", "correct")
		if co == nil {
			continue
		}
		ch := Choice{ID: c.id(cp, co), Text: c.text(cp, co, "text", true, MaxChoiceText), Correct: c.boolean(cp, co, "correct")}
		if ch.Correct {
			correct = append(correct, fmt.Sprintf("choices[%d]", i))
		}
		qu.Choices = append(qu.Choices, ch)
	}
	if _, ok := o.vals["choices"]; ok && o.vals["choices"] != nil {
		if _, isList := o.vals["choices"].([]any); !isList {
			return qu // its type is the problem reported
		}
	}
	switch {
	case len(choices) < 2:
		c.add(path, "%d choices; a question has at least 2", len(choices))
	case len(correct) == 0:
		c.add(path, "no correct choice")
	case len(correct) > 1:
		c.add(path, "%d correct choices (%s); a question has exactly one", len(correct), strings.Join(correct, ", "))
	}
	return qu
}
