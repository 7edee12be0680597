package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// ConnectJetStream opens the NATS connection of an operator command, as
// Connect does, and its JetStream context; the caller closes the
// connection. It returns the error that stopped it.
func ConnectJetStream(url string, auth NATSAuth, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := Connect(url, auth, log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// AnnounceContent follows a change of content made outside the API
// (`quizstream seed`): it saves the copy in NATS that an API instance
// starts from while PostgreSQL is down (a failure is only logged: the copy
// is a fallback) and, when the content changed, tells every API instance
// to reload it. It returns the error of that notice.
func AnnounceContent(ctx context.Context, st *store.Store, nc *nats.Conn, js jetstream.JetStream, changed bool, log *slog.Logger) error {
	if saved, err := SaveContentCopy(ctx, st, js); err != nil {
		log.Warn("seed: content copy in NATS not saved", "err", err)
	} else if saved {
		log.Info("seed: content copy in NATS saved", "bucket", streams.ContentBucket)
	}
	if !changed {
		return nil
	}
	if err := events.Notify(nc, events.SubjectContentChanged, nil); err != nil {
		return err
	}
	log.Info("seed: API instances told to reload content")
	return nil
}
