package app_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/natsserver"
	"github.com/quizstream/quizstream/streams"
)

// perfect is the event a stranger would like stored: full marks.
func perfect() events.AttemptSubmitted {
	quiz, student := uuid.New(), uuid.New()
	answers := []events.Answer{{QuestionID: "q1", ChoiceID: "c1"}}
	return events.AttemptSubmitted{
		AttemptID: events.AttemptID(student, "forged"), StudentID: student, QuizID: quiz, CourseID: uuid.New(),
		IdempotencyKey: "forged", Answers: answers, AnswersHash: events.HashAnswers(quiz, answers),
		Score: 10, MaxScore: 10, SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

// The embedded server of `quizstream dev` lets in only the holder of the
// seed kept under DATA_DIR: a process without it, or with another
// identity, cannot connect, so cannot publish an event; quizstream's own
// connection publishes. The seed outlives a restart, so that workers in
// other processes keep theirs.
func TestDevServerRefusesStrangers(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	ns, seedFile, err := natsserver.StartDevServer(natsserver.DevServer{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if want := filepath.Join(dataDir, "nats-dev.nk"); seedFile != want {
		t.Fatalf("seed file %s, want %s", seedFile, want)
	}
	log := apptest.Logger(t)
	url := ns.ClientURL()

	nc, err := app.Connect(url, app.NATSAuth{NKeySeedFile: seedFile}, log)
	if err != nil {
		t.Fatalf("quizstream's own identity refused: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := eventlog.NewLog(t.Context(), js, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lg.PublishAttempt(t.Context(), perfect()); err != nil {
		t.Fatalf("publish with the dev identity: %v", err)
	}

	otherSeed := filepath.Join(t.TempDir(), "other.nk")
	if _, err := natsserver.UserSeed(otherSeed); err != nil {
		t.Fatal(err)
	}
	for name, auth := range map[string]app.NATSAuth{
		"no credentials": {},
		"another nkey":   {NKeySeedFile: otherSeed},
		"a guessed user": {User: "quizstream", Password: "quizstream"},
		"a token":        {Token: "quizstream"},
	} {
		stranger, err := app.Connect(url, auth, log)
		if err == nil {
			stranger.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	// And the plain client a local process would use.
	if stranger, err := nats.Connect(url); err == nil {
		stranger.Close()
		t.Error("a client without credentials connected")
	}
	if n := eventstest.StreamMessages(t, js, streams.DefaultStreamName); n != 1 {
		t.Fatalf("the stream holds %d events, want quizstream's one", n)
	}

	// A restart keeps the seed, and so the identity.
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()
	ns2, seed2, err := natsserver.StartDevServer(natsserver.DevServer{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns2.Shutdown(); ns2.WaitForShutdown() })
	if seed2 != seedFile {
		t.Fatalf("seed file moved: %s", seed2)
	}
	nc2, err := app.Connect(ns2.ClientURL(), app.NATSAuth{NKeySeedFile: seedFile}, log)
	if err != nil {
		t.Fatalf("the kept seed is refused after a restart: %v", err)
	}
	nc2.Close()
}

// Each kind of identity NATS_USER/NATS_PASSWORD, NATS_TOKEN or
// NATS_NKEY_SEED_FILE bind reaches a server that requires it, and the
// wrong one is refused.
func TestConnectCredentials(t *testing.T) {
	t.Parallel()
	seed := filepath.Join(t.TempDir(), "user.nk")
	pub, err := natsserver.UserSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	users := eventstest.StartServer(t, natsserver.ServerConfig{Dir: t.TempDir(),
		Auth: natsserver.ServerAuth{User: "qs", Password: "s3cret", NKeys: []string{pub}}})
	token := eventstest.StartServer(t, natsserver.ServerConfig{Dir: t.TempDir(), Auth: natsserver.ServerAuth{Token: "t0ken"}})
	log := apptest.Logger(t)
	for _, tc := range []struct {
		name string
		url  string
		auth app.NATSAuth
		ok   bool
	}{
		{"user and password", users.ClientURL(), app.NATSAuth{User: "qs", Password: "s3cret"}, true},
		{"wrong password", users.ClientURL(), app.NATSAuth{User: "qs", Password: "guess"}, false},
		{"nkey seed", users.ClientURL(), app.NATSAuth{NKeySeedFile: seed}, true},
		{"none", users.ClientURL(), app.NATSAuth{}, false},
		{"token", token.ClientURL(), app.NATSAuth{Token: "t0ken"}, true},
		{"wrong token", token.ClientURL(), app.NATSAuth{Token: "guess"}, false},
		{"none to the token server", token.ClientURL(), app.NATSAuth{}, false},
	} {
		nc, err := app.Connect(tc.url, tc.auth, log)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && err == nil:
			t.Errorf("%s: connected", tc.name)
		case !tc.ok && !errors.Is(err, nats.ErrAuthorization):
			t.Errorf("%s: %v, want an authorization violation", tc.name, err)
		}
		if nc != nil {
			nc.Close()
		}
	}
}

// Credentials that are not one identity are refused before any dial.
func TestConnectRefusesMixedCredentials(t *testing.T) {
	t.Parallel()
	seed := filepath.Join(t.TempDir(), "user.nk")
	if _, err := natsserver.UserSeed(seed); err != nil {
		t.Fatal(err)
	}
	for name, auth := range map[string]app.NATSAuth{
		"user without password": {User: "qs"},
		"password without user": {Password: "s3cret"},
		"token and seed":        {Token: "t", NKeySeedFile: seed},
		"user and token":        {User: "qs", Password: "p", Token: "t"},
		"creds and seed":        {CredsFile: seed, NKeySeedFile: seed},
		"missing seed file":     {NKeySeedFile: filepath.Join(t.TempDir(), "absent.nk")},
	} {
		// Nothing listens at this address: an error about it would mean
		// the credentials were not checked first.
		nc, err := app.Connect("nats://127.0.0.1:1", auth, apptest.Logger(t))
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		if !strings.Contains(err.Error(), "nats credentials") {
			t.Errorf("%s: %v, want a credentials error", name, err)
		}
	}
}
