package store

import (
	"encoding/json"
	"fmt"
)

// contentSnapshotFormat versions EncodeContent's output: a reader that
// finds another refuses it rather than misread it.
const contentSnapshotFormat = 1

type contentSnapshot struct {
	Format  int      `json:"format"`
	Courses []Course `json:"courses"`
}

// EncodeContent returns courses (as LoadContent returns them, answer keys
// included) in the form kept outside PostgreSQL, so that an API instance
// can start while the database is down; it fails only if a value does not
// encode.
func EncodeContent(courses []Course) ([]byte, error) {
	b, err := json.Marshal(contentSnapshot{Format: contentSnapshotFormat, Courses: courses})
	if err != nil {
		return nil, fmt.Errorf("encode content: %w", err)
	}
	return b, nil
}

// DecodeContent returns the courses EncodeContent encoded, or an error
// for anything else (another format version included).
func DecodeContent(data []byte) ([]Course, error) {
	var snap contentSnapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("decode content: %w", err)
	}
	if snap.Format != contentSnapshotFormat {
		return nil, fmt.Errorf("decode content: format %d, this build reads %d", snap.Format, contentSnapshotFormat)
	}
	return snap.Courses, nil
}
