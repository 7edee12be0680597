package content_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/content"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

var update = flag.Bool("update", false, "rewrite demo.json from store.DemoContent")

// The embedded demo file is the demo content, ids included: other tests
// (and clients) rely on store.DemoSprintID and the like.
func TestDemoFile(t *testing.T) {
	want, err := content.Encode(content.FromStore(store.DemoContent(store.DefaultDemo)))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("demo.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(content.Demo(), want) {
		t.Fatalf("demo.json differs from store.DemoContent(store.DefaultDemo); go test ./content -run TestDemoFile -update rewrites it")
	}
	f, err := content.Parse(content.Demo())
	if err != nil {
		t.Fatal(err)
	}
	last := f.Courses[len(f.Courses)-1].Quizzes
	if n := len(last); last[n-2].ID != store.DemoSprintID || last[n-1].ID != store.DemoExamID || *last[n-2].TimeLimitS != 60 || *last[n-1].MaxSessions != 2 {
		t.Fatalf("the demo's timed quizzes are not at the end of its last course: %+v", last[n-2:])
	}
}

// small is a valid file: one course of one timed quiz and one untimed
// quiz, as generic JSON that each case below breaks.
func small(t testing.TB) map[string]any {
	t.Helper()
	id := func(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
	question := func(n int) map[string]any {
		return map[string]any{"id": id(n), "prompt": "Which?", "choices": []any{
			map[string]any{"id": id(n + 1), "text": "A", "correct": true},
			map[string]any{"id": id(n + 2), "text": "B"},
		}}
	}
	doc := map[string]any{"version": 1, "courses": []any{
		map[string]any{"id": id(1), "slug": "go-101", "title": "Go", "description": "Basics.", "quizzes": []any{
			map[string]any{"id": id(2), "title": "Quiz", "questions": []any{question(10), question(20)}},
			map[string]any{"id": id(3), "title": "Exam", "time_limit_s": 600, "opens_at": "2027-01-31T08:00:00+01:00",
				"closes_at": "2027-01-31T12:00:00.5Z", "max_sessions": 2, "grace_s": 0, "questions": []any{question(30)}},
		}},
	}}
	return doc
}

func encode(t testing.TB, doc any) []byte {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at returns the object at a path of keys and indexes in doc.
func at(doc any, path ...any) map[string]any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			doc = doc.(map[string]any)[k]
		case int:
			doc = doc.([]any)[k]
		}
	}
	return doc.(map[string]any)
}

func TestParseNamesEachProblem(t *testing.T) {
	t.Parallel()
	if _, err := content.Parse(encode(t, small(t))); err != nil {
		t.Fatalf("the valid file: %v", err)
	}
	quiz := []any{"courses", 0, "quizzes", 0}
	exam := []any{"courses", 0, "quizzes", 1}
	q0 := append(append([]any{}, quiz...), "questions", 0)
	for _, tc := range []struct {
		name  string
		edit  func(doc map[string]any)
		raw   string // instead of edit: the file itself
		wants []string
	}{
		{name: "not JSON", raw: `{"version": 1,`, wants: []string{"not a JSON document: line 1, column 15: the document ends too early"}},
		{name: "trailing data", raw: `{"version": 1, "courses": []} {}`, wants: []string{"not a JSON document: line 1, column 31: more data after the document"}},
		{name: "duplicate key", raw: `{"version": 1, "version": 1, "courses": []}`, wants: []string{`not a JSON document: line 1, column 16: key "version" given twice in one object`}},
		{name: "not an object", raw: `[]`, wants: []string{"must be an object, not a list"}},
		{name: "no version", edit: func(d map[string]any) { delete(d, "version") }, wants: []string{"version: missing; this build reads version 1"}},
		{name: "other version", edit: func(d map[string]any) { d["version"] = 2 }, wants: []string{"version: 2: this build reads version 1"}},
		{name: "no courses", edit: func(d map[string]any) { delete(d, "courses") }, wants: []string{"courses: missing"}},
		{name: "unknown top field", edit: func(d map[string]any) { d["course"] = 1 }, wants: []string{"course: unknown field (known: version, courses)"}},
		{name: "course not an object", edit: func(d map[string]any) { d["courses"] = []any{"go"} }, wants: []string{"courses[0]: must be an object, not a string"}},
		{name: "no id", edit: func(d map[string]any) { delete(at(d, "courses", 0), "id") }, wants: []string{"courses[0].id: missing: every object has a stable id (a UUID)"}},
		{name: "id not a UUID", edit: func(d map[string]any) { at(d, quiz...)["id"] = "quiz-1" }, wants: []string{`courses[0].quizzes[0].id: "quiz-1" is not a UUID`}},
		{name: "braced UUID", edit: func(d map[string]any) { at(d, quiz...)["id"] = "{00000000-0000-4000-8000-000000000002}" }, wants: []string{`courses[0].quizzes[0].id: "{00000000-0000-4000-8000-000000000002}" is not a UUID`}},
		{name: "nil UUID", edit: func(d map[string]any) { at(d, quiz...)["id"] = uuid.Nil.String() }, wants: []string{"courses[0].quizzes[0].id: must not be the nil UUID"}},
		{name: "id of another object", edit: func(d map[string]any) { at(d, exam...)["id"] = at(d, q0...)["id"] },
			wants: []string{"courses[0].quizzes[1].id: 00000000-0000-4000-8000-000000000010 is also the id of courses[0].quizzes[0].questions[0]"}},
		{name: "duplicate slug", edit: func(d map[string]any) {
			second := encode(t, at(d, "courses", 0))
			var c map[string]any
			json.Unmarshal(bytes.ReplaceAll(second, []byte("-8000-0000000000"), []byte("-8000-1000000000")), &c)
			d["courses"] = append(d["courses"].([]any), c)
		}, wants: []string{`courses[1].slug: "go-101" is also the slug of courses[0]`}},
		{name: "bad slug", edit: func(d map[string]any) { at(d, "courses", 0)["slug"] = "go 101" }, wants: []string{`courses[0].slug: "go 101": a slug holds`}},
		{name: "empty title", edit: func(d map[string]any) { at(d, "courses", 0)["title"] = " " }, wants: []string{"courses[0].title: must not be empty"}},
		{name: "title not a string", edit: func(d map[string]any) { at(d, quiz...)["title"] = 7 }, wants: []string{"courses[0].quizzes[0].title: must be a string, not a number"}},
		{name: "title too long", edit: func(d map[string]any) { at(d, quiz...)["title"] = strings.Repeat("é", content.MaxTitle+1) },
			wants: []string{"courses[0].quizzes[0].title: longer than 500 characters"}},
		{name: "NUL in text", edit: func(d map[string]any) { at(d, append(q0, "choices", 1)...)["text"] = "a\x00b" },
			wants: []string{"courses[0].quizzes[0].questions[0].choices[1].text: holds a NUL character"}},
		{name: "quizzes not a list", edit: func(d map[string]any) { at(d, "courses", 0)["quizzes"] = map[string]any{} }, wants: []string{"courses[0].quizzes: must be a list, not an object"}},
		{name: "no questions", edit: func(d map[string]any) { at(d, quiz...)["questions"] = []any{} }, wants: []string{"courses[0].quizzes[0]: no questions"}},
		{name: "no correct choice", edit: func(d map[string]any) { delete(at(d, append(q0, "choices", 0)...), "correct") },
			wants: []string{"courses[0].quizzes[0].questions[0]: no correct choice"}},
		{name: "two correct choices", edit: func(d map[string]any) { at(d, append(q0, "choices", 1)...)["correct"] = true },
			wants: []string{"courses[0].quizzes[0].questions[0]: 2 correct choices (choices[0], choices[1]); a question has exactly one"}},
		{name: "one choice", edit: func(d map[string]any) { at(d, q0...)["choices"] = at(d, q0...)["choices"].([]any)[:1] },
			wants: []string{"courses[0].quizzes[0].questions[0]: 1 choices; a question has at least 2"}},
		{name: "correct not a bool", edit: func(d map[string]any) { at(d, append(q0, "choices", 0)...)["correct"] = "yes" },
			wants: []string{"courses[0].quizzes[0].questions[0].choices[0].correct: must be true or false, not a string", "courses[0].quizzes[0].questions[0]: no correct choice"}},
		{name: "time limit not whole", edit: func(d map[string]any) { at(d, exam...)["time_limit_s"] = 1.5 },
			wants: []string{"courses[0].quizzes[1].time_limit_s: must be a whole number, not 1.5"}},
		{name: "time limit zero", edit: func(d map[string]any) { at(d, exam...)["time_limit_s"] = 0 },
			wants: []string{"courses[0].quizzes[1].time_limit_s: must be from 1 to 2147483647, not 0"}},
		{name: "max sessions too large", edit: func(d map[string]any) { at(d, exam...)["max_sessions"] = int64(1) << 31 },
			wants: []string{"courses[0].quizzes[1].max_sessions: must be from 1 to 2147483647, not 2147483648"}},
		{name: "negative grace", edit: func(d map[string]any) { at(d, exam...)["grace_s"] = -1 },
			wants: []string{"courses[0].quizzes[1].grace_s: must be from 0 to 2147483647, not -1"}},
		{name: "window backwards", edit: func(d map[string]any) { at(d, exam...)["closes_at"] = "2027-01-31T07:00:00Z" },
			wants: []string{"courses[0].quizzes[1].closes_at: must be after opens_at"}},
		{name: "not a time", edit: func(d map[string]any) { at(d, exam...)["opens_at"] = "tomorrow" },
			wants: []string{`courses[0].quizzes[1].opens_at: "tomorrow" is not an RFC 3339 time`}},
		{name: "nanoseconds", edit: func(d map[string]any) { at(d, exam...)["opens_at"] = "2027-01-31T08:00:00.000000001Z" },
			wants: []string{"courses[0].quizzes[1].opens_at: more precise than a microsecond"}},
		{name: "untimed with exam settings", edit: func(d map[string]any) { delete(at(d, exam...), "time_limit_s") }, wants: []string{
			"courses[0].quizzes[1].opens_at: only a timed quiz (one with time_limit_s) takes it",
			"courses[0].quizzes[1].closes_at: only a timed quiz",
			"courses[0].quizzes[1].max_sessions: only a timed quiz",
			"courses[0].quizzes[1].grace_s: only a timed quiz",
		}},
		{name: "unknown quiz field", edit: func(d map[string]any) { at(d, exam...)["time_limit"] = 60 },
			wants: []string{"courses[0].quizzes[1].time_limit: unknown field"}},
		{name: "exercise without languages or tests", edit: func(d map[string]any) {
			at(d, "courses", 0)["exercises"] = []any{map[string]any{"id": "00000000-0000-4000-8000-00000000e001", "title": "Sum", "statement": "Add."}}
		}, wants: []string{"courses[0].exercises[0].languages: at least one language", "courses[0].exercises[0].tests: at least one test case"}},
		{name: "exercise language not a name", edit: func(d map[string]any) {
			at(d, "courses", 0)["exercises"] = []any{map[string]any{"id": "00000000-0000-4000-8000-00000000e001", "title": "Sum", "statement": "Add.",
				"languages": []any{"Python 3", "go", "go"}, "tests": []any{map[string]any{"stdin": "1 2", "stdout": "3", "hidden": "yes"}}}}
		}, wants: []string{`courses[0].exercises[0].languages[0]: "Python 3": a language is`, `courses[0].exercises[0].languages[2]: "go" is listed twice`,
			"courses[0].exercises[0].tests[0].hidden: must be true or false, not a string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.raw)
			if tc.raw == "" {
				doc := small(t)
				tc.edit(doc)
				data = encode(t, doc)
			}
			_, err := content.Parse(data)
			var inv *content.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Parse: %v, want an *InvalidError", err)
			}
			if len(inv.Problems) != len(tc.wants) || inv.More != 0 {
				t.Fatalf("got %d problems (%d more), want %d:\n%v", len(inv.Problems), inv.More, len(tc.wants), err)
			}
			for i, want := range tc.wants {
				if got := inv.Problems[i].String(); !strings.HasPrefix(got, want) {
					t.Errorf("problem %d: %q, want it to start with %q", i, got, want)
				}
			}
		})
	}
}

// Every problem of a file is found, in file order, and at most MaxErrors
// of them are listed.
func TestParseBoundsProblems(t *testing.T) {
	t.Parallel()
	doc := small(t)
	questions := []any{}
	for i := range 60 {
		questions = append(questions, map[string]any{"id": uuid.NewString(), "prompt": fmt.Sprintf("Q%d", i), "choices": []any{}})
	}
	at(doc, "courses", 0, "quizzes", 0)["questions"] = questions
	_, err := content.Parse(encode(t, doc))
	var inv *content.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != content.MaxErrors || inv.More != 10 {
		t.Fatalf("Parse: %v; want %d problems and 10 more", err, content.MaxErrors)
	}
	if got := inv.Problems[49].Path; got != "courses[0].quizzes[0].questions[49]" {
		t.Errorf("the 50th problem is at %s", got)
	}
	if !strings.HasSuffix(err.Error(), "... and 10 more") {
		t.Errorf("the message does not say how many more: %q", err.Error()[len(err.Error())-40:])
	}
}

// emptyStore returns a store on a new database holding no content.
func emptyStore(t testing.TB) (*store.Store, func(sql string) int) {
	t.Helper()
	st, url := storetest.Open(t)
	db := storetest.DB(t, url)
	if _, err := db.Exec(t.Context(), `DELETE FROM courses`); err != nil {
		t.Fatal(err)
	}
	return st, func(sql string) int { return storetest.Int(t, db, sql) }
}

// Export, import into an empty database, export again: the same bytes,
// for the demo and for a file with every timed setting.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"demo", content.Demo()},
		{"timed settings", encode(t, small(t))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			first, count := emptyStore(t)
			if _, err := content.Import(ctx, first, tc.file); err != nil {
				t.Fatal(err)
			}
			exported, err := content.Export(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "demo" && !bytes.Equal(exported, content.Demo()) {
				t.Fatalf("the demo exported differs from the file imported")
			}
			second, _ := emptyStore(t)
			res, err := content.Import(ctx, second, exported)
			if err != nil {
				t.Fatal(err)
			}
			again, err := content.Export(ctx, second)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, exported) {
				t.Fatalf("export, import, export: the bytes differ\nfirst:\n%.2000s\nsecond:\n%.2000s", exported, again)
			}
			n := res.Counts
			if want := int64(n.Courses + n.Quizzes + n.Questions + n.Choices + n.Exercises); res.RowsChanged != want {
				t.Errorf("import into an empty database changed %d rows, want %d (one per object)", res.RowsChanged, want)
			}
			if got := count(`SELECT count(*) FROM choices`); got != n.Choices {
				t.Errorf("%d choices stored, the file holds %d", got, n.Choices)
			}
			if got := count(`SELECT count(*) FROM exercises`); got != n.Exercises {
				t.Errorf("%d exercises stored, the file holds %d", got, n.Exercises)
			}
		})
	}
	// What the timed file says comes back as it said it, in UTC.
	st, _ := emptyStore(t)
	if _, err := content.Import(t.Context(), st, encode(t, small(t))); err != nil {
		t.Fatal(err)
	}
	out, err := content.Export(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"time_limit_s": 600`, `"opens_at": "2027-01-31T07:00:00Z"`, `"closes_at": "2027-01-31T12:00:00.5Z"`, `"max_sessions": 2`, `"grace_s": 0`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("export lacks %s:\n%s", want, out)
		}
	}
}

// Importing a file again changes nothing; an edit changes its row only,
// and objects are updated (moved, re-keyed) by id.
func TestImportIsIdempotent(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t) // the demo, seeded
	ctx := t.Context()
	res, err := content.Import(ctx, st, content.Demo())
	if err != nil || res.RowsChanged != 0 {
		t.Fatalf("importing the demo over the demo: %+v, %v; want 0 rows changed", res, err)
	}
	f, err := content.Parse(content.Demo())
	if err != nil {
		t.Fatal(err)
	}
	f.Courses[0].Title = "Renamed"
	q := &f.Courses[0].Quizzes[0].Questions[0]
	q.Choices[0].Correct, q.Choices[1].Correct = false, true                     // the answer key
	f.Courses[1].Quizzes = append(f.Courses[1].Quizzes, f.Courses[0].Quizzes[1]) // moved to another course
	f.Courses[0].Quizzes = append(f.Courses[0].Quizzes[:1], f.Courses[0].Quizzes[2:]...)
	edited, err := content.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Course title, two choices, the moved quiz, and the positions of the
	// 8 quizzes after it in course 1.
	for i, want := range []int64{1 + 2 + 1 + 8, 0} {
		res, err := content.Import(ctx, st, edited)
		if err != nil || res.RowsChanged != want {
			t.Fatalf("import %d of the edited file: %+v, %v; want %d rows changed", i+1, res, err, want)
		}
	}
	got, err := content.Export(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, edited) {
		t.Fatalf("the database does not hold the edited file")
	}
}

// A file that does not validate, or whose slug is another course's in
// the database, writes nothing: not even its valid parts.
func TestInvalidWritesNothing(t *testing.T) {
	t.Parallel()
	st, url := storetest.Open(t)
	db := storetest.DB(t, url)
	ctx := t.Context()
	rows := func() string {
		var s string
		err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM courses) || ' ' || (SELECT count(*) FROM quizzes) || ' ' ||
			(SELECT count(*) FROM questions) || ' ' || (SELECT count(*) FROM choices) || ' ' ||
			(SELECT md5(string_agg(title, ',' ORDER BY id)) FROM courses)`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := rows()

	// A new course, valid, and an edit of the first demo course, then a
	// broken question.
	f, err := content.Parse(content.Demo())
	if err != nil {
		t.Fatal(err)
	}
	f.Courses[0].Title = "Edited"
	doc := map[string]any{}
	b, _ := content.Encode(&content.File{Version: 1, Courses: f.Courses[:1]})
	json.Unmarshal(b, &doc)
	extra := small(t)
	doc["courses"] = append(doc["courses"].([]any), at(extra, "courses", 0))
	delete(at(doc, "courses", 1, "quizzes", 0, "questions", 1, "choices", 0), "correct")
	_, err = content.Import(ctx, st, encode(t, doc))
	var inv *content.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 || inv.Problems[0].String() != "courses[1].quizzes[0].questions[1]: no correct choice" {
		t.Fatalf("import of a broken file: %v", err)
	}
	if after := rows(); after != before {
		t.Fatalf("a refused file changed the database: %s -> %s", before, after)
	}

	// Valid, but its slug is the first demo course's, under another id.
	extra = small(t)
	at(extra, "courses", 0)["slug"] = "course-01"
	_, err = content.Import(ctx, st, encode(t, extra))
	if !errors.As(err, &inv) || len(inv.Problems) != 1 || !strings.HasPrefix(inv.Problems[0].String(), `courses[0].slug: "course-01" is the slug of course `) {
		t.Fatalf("import of a taken slug: %v", err)
	}
	if after := rows(); after != before {
		t.Fatalf("a refused file changed the database: %s -> %s", before, after)
	}
}

// The example in docs/content.md is a valid file.
func TestDocExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/content.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```json\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/content.md has no ```json example")
	}
	f, err := content.Parse([]byte(example))
	if err != nil {
		t.Fatalf("the example of docs/content.md: %v", err)
	}
	if n := f.Count(); n != (content.Counts{Courses: 1, Quizzes: 2, Questions: 2, Choices: 4}) {
		t.Fatalf("the example holds %+v", n)
	}
}
