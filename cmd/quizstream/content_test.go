package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/content"
	"github.com/quizstream/quizstream/streams"
)

// content export -o writes the database's content; content import of it
// into an emptied database restores it, tells the API instances, and says
// so in its result; a broken file is refused with its problems named.
func TestContentCommands(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	file := filepath.Join(t.TempDir(), "content.json")
	runCommand(t, s, "content", "export", "-o", file)
	exported, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(exported, content.Demo()) {
		t.Fatalf("content export -o of the demo: %d bytes, %v; want the demo file", len(exported), err)
	}
	if _, err := s.DB.Exec(t.Context(), `DELETE FROM courses`); err != nil {
		t.Fatal(err)
	}
	out := runCommand(t, s, "content", "import", "--json", file)
	var res content.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("content import --json: %v\n%s", err, out)
	}
	if res.Courses != 20 || res.Choices != 8080 || res.RowsChanged != 20+202+2020+8080+3 || !res.CopySaved || !res.Notified {
		t.Fatalf("content import into an empty database: %+v", res)
	}
	if got := runCommand(t, s, "content", "export"); got != string(exported) {
		t.Fatalf("content export to stdout after the import differs from the file imported")
	}

	if err := os.WriteFile(file, []byte(`{"version": 1, "courses": [{"id": "x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"content", "import", file, "--database-url", s.DBURL}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `courses[0].id: "x" is not a UUID`) || !strings.Contains(err.Error(), "courses[0].slug: missing") {
		t.Fatalf("content import of a broken file: %v", err)
	}
	// --dry-run --json prints the problems as JSON, and fails.
	stdout.Reset()
	err = run(t.Context(), []string{"content", "import", "--dry-run", "--json", file}, &stdout, &stderr)
	var got content.InvalidError
	if jerr := json.Unmarshal(stdout.Bytes(), &got); err == nil || jerr != nil || len(got.Problems) != 3 ||
		got.Problems[0] != (content.Problem{Path: "courses[0].id", Message: `"x" is not a UUID (like 6f1c0d52-7d8e-4b8a-9d0e-1a2b3c4d5e6f)`}) {
		t.Fatalf("content import --dry-run --json of a broken file: %v, %v\n%s", err, jerr, stdout.String())
	}
}
