package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/content"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// An import that changes content tells running API instances, which
// reload at once (their periodic reload is off), and saves the content
// copy in NATS; an import that changes nothing tells no one.
func TestImportContent(t *testing.T) {
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{ContentReload: -1})
	c := apptest.Client(a.URL)
	ctx := t.Context()

	courseID := uuid.New()
	file := []byte(fmt.Sprintf(`{"version": 1, "courses": [{"id": %q, "slug": "imported", "title": "Imported",
		"description": "", "quizzes": [{"id": %q, "title": "Q", "questions": [{"id": %q, "prompt": "Why?",
		"choices": [{"id": %q, "text": "A", "correct": true}, {"id": %q, "text": "B"}]}]}]}]}`,
		courseID, uuid.New(), uuid.New(), uuid.New(), uuid.New()))
	notices, err := s.NC.SubscribeSync(events.SubjectContentChanged)
	if err != nil {
		t.Fatal(err)
	}
	ci := app.ContentImport{Store: s.Store, NATS: s.NC, JS: s.JS, Logger: apptest.Logger(t)}
	res, err := app.ImportContent(ctx, ci, file)
	if err != nil {
		t.Fatal(err)
	}
	want := content.Result{Counts: content.Counts{Courses: 1, Quizzes: 1, Questions: 1, Choices: 2}, RowsChanged: 5, CopySaved: true, Notified: true}
	if res != want {
		t.Fatalf("import: %+v, want %+v", res, want)
	}
	if _, err := notices.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("no content-changed notice: %v", err)
	}
	apptest.WaitFor(t, 10*time.Second, "the API to serve the imported course", func() bool {
		got, _, err := c.Course(ctx, courseID.String())
		return err == nil && got.Title == "Imported"
	})
	data, _, err := streams.NewContentSnapshots(s.JS).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	courses, err := store.DecodeContent(data)
	found := false
	for _, c := range courses {
		found = found || c.ID == courseID
	}
	if err != nil || !found {
		t.Fatalf("the content copy does not hold the imported course (%d courses, %v)", len(courses), err)
	}

	res, err = app.ImportContent(ctx, ci, file)
	if want := (content.Result{Counts: want.Counts}); err != nil || res != want {
		t.Fatalf("import again: %+v, %v; want %+v", res, err, want)
	}
	if msg, err := notices.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("an import that changed nothing sent a notice: %v", msg)
	}
}
