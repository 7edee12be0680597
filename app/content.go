package app

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/content"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// ContentImport is what ImportContent works with.
type ContentImport struct {
	// Store is the database the file is imported into. Required.
	Store *store.Store
	// NATS and JS, when set, are the installation's NATS: the content
	// copy is saved in its bucket, and API instances are told to reload
	// when the import changed something. Defaults to none (the instances
	// then see the new content at their next periodic reload).
	NATS *nats.Conn
	JS   jetstream.JetStream
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// ImportContent imports a content file (content.Import: validated as a
// whole, written in one transaction) and then does what `quizstream seed`
// does after writing: saves the content copy in NATS (a failure there is
// logged only, as the copy matters only to an instance starting while
// PostgreSQL is down) and, when rows changed, publishes the
// content-changed notice. It returns what it did, or the first error (an
// *content.InvalidError when the file is refused, with nothing written).
func ImportContent(ctx context.Context, ci ContentImport, data []byte) (content.Result, error) {
	log := ci.Logger
	if log == nil {
		log = slog.Default()
	}
	res, err := content.Import(ctx, ci.Store, data)
	if err != nil {
		return res, err
	}
	log.Info("content: file imported", "courses", res.Courses, "quizzes", res.Quizzes,
		"questions", res.Questions, "choices", res.Choices, "rows_changed", res.RowsChanged)
	if ci.JS != nil {
		saved, err := SaveContentCopy(ctx, ci.Store, ci.JS)
		if err != nil {
			log.Warn("content: content copy in NATS not saved", "err", err)
		}
		res.CopySaved = saved
	}
	if ci.NATS != nil && res.RowsChanged > 0 {
		if err := events.Notify(ci.NATS, events.SubjectContentChanged, nil); err != nil {
			return res, err
		}
		res.Notified = true
		log.Info("content: API instances told to reload content")
	}
	return res, nil
}

// SaveContentCopy saves the content PostgreSQL holds as its copy in NATS
// (the content bucket, which `quizstream stream apply` creates), from which
// an API instance starts while PostgreSQL is down; `quizstream seed` calls
// it, and every API instance does when it loads new content. It reports
// whether the copy changed, or returns the first error.
func SaveContentCopy(ctx context.Context, st *store.Store, js jetstream.JetStream) (bool, error) {
	courses, err := st.LoadContent(ctx)
	if err != nil {
		return false, err
	}
	data, err := store.EncodeContent(courses)
	if err != nil {
		return false, err
	}
	return streams.NewContentSnapshots(js).Save(ctx, data)
}
