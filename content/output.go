package content

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteText prints what an import did, as `quizstream content import`
// shows it; with dryRun, what a validation found (only Counts are set). A
// failed write goes unreported: the command's outcome is the import's.
func (r Result) WriteText(w io.Writer, dryRun bool) {
	if dryRun {
		fmt.Fprintf(w, "valid: %d courses, %d quizzes, %d questions, %d choices; nothing written (--dry-run)\n",
			r.Courses, r.Quizzes, r.Questions, r.Choices)
		return
	}
	fmt.Fprintf(w, "imported %d courses, %d quizzes, %d questions, %d choices: %d rows changed\n",
		r.Courses, r.Quizzes, r.Questions, r.Choices, r.RowsChanged)
	if r.CopySaved {
		fmt.Fprintln(w, "content copy in NATS saved")
	}
	if r.Notified {
		fmt.Fprintln(w, "API instances told to reload content")
	}
}

// WriteFile writes an exported content file to name whole or not at all
// (a temporary file beside it, renamed into place), readable by its owner
// alone: it holds the answer keys. It returns the first error, and leaves
// no temporary file behind.
func WriteFile(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write content file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("write content file: %w", err)
	}
	return nil
}
