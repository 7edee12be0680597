package content_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/quizstream/quizstream/content"
)

// WriteFile replaces the file whole, readable by its owner alone, and
// leaves no temporary file; into a folder that does not exist it fails.
func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "content.json")
	if err := os.WriteFile(name, []byte("old, longer than the new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := content.WriteFile(name, []byte("new")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(name)
	fi, serr := os.Stat(name)
	if err != nil || serr != nil || string(data) != "new" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after WriteFile: %q (%v), mode %v (%v)", data, err, fi.Mode(), serr)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("the folder holds %d entries (%v), want the file alone", len(entries), err)
	}
	if err := content.WriteFile(filepath.Join(dir, "no", "such.json"), []byte("x")); err == nil {
		t.Error("WriteFile into a missing folder did not fail")
	}
}

// An import prints its counts and what it told NATS; a dry run says that
// nothing was written.
func TestResultWriteText(t *testing.T) {
	t.Parallel()
	res := content.Result{Counts: content.Counts{Courses: 1, Quizzes: 2, Questions: 3, Choices: 4}, RowsChanged: 10, CopySaved: true, Notified: true}
	var b bytes.Buffer
	res.WriteText(&b, false)
	want := "imported 1 courses, 2 quizzes, 3 questions, 4 choices: 10 rows changed\ncontent copy in NATS saved\nAPI instances told to reload content\n"
	if b.String() != want {
		t.Errorf("import printed %q, want %q", b.String(), want)
	}
	b.Reset()
	res.WriteText(&b, true)
	if want := "valid: 1 courses, 2 quizzes, 3 questions, 4 choices; nothing written (--dry-run)\n"; b.String() != want {
		t.Errorf("dry run printed %q, want %q", b.String(), want)
	}
}
