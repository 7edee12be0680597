package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

func newLogger(c *config, stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	switch c.AccessLogLevel {
	case "":
	case "off":
		c.API.AccessLogLevel = api.AccessLogOff
	default:
		var access slog.Level
		if err := access.UnmarshalText([]byte(c.AccessLogLevel)); err != nil {
			return nil, fmt.Errorf("ACCESS_LOG_LEVEL: %w", err)
		}
		c.API.AccessLogLevel = access
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, fmt.Errorf("LOG_FORMAT must be text or json, not %q", c.LogFormat)
}

// setup parses the flags, builds the logger and logs the configuration.
func setup(f *flags, c *config, args []string, command string, stderr io.Writer) (*slog.Logger, error) {
	if err := f.parse(args); err != nil {
		return nil, err
	}
	log, err := newLogger(c, stderr)
	if err != nil {
		return nil, err
	}
	f.logConfig(log, command)
	return log, nil
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	f := newFlags("migrate", getenv, stderr)
	f.common(&c)
	f.database(&c)
	log, err := setup(f, &c, args, "migrate", stderr)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	return app.Migrate(ctx, st, log)
}

func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	f := newFlags("seed", getenv, stderr)
	f.common(&c)
	f.database(&c)
	f.secretURL(&c.NATSURL, "NATS_URL", "", "NATS server URL(s); when set, running API instances are told to reload content")
	f.natsAuth(&c)
	log, err := setup(f, &c, args, "seed", stderr)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	changed, err := app.Seed(ctx, st, log)
	if err != nil || c.NATSURL == "" {
		return err
	}
	nc, js, err := connectJetStream(c.NATSURL, c.NATSAuth, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	// The copy an API instance starts from while PostgreSQL is down.
	if saved, err := app.SaveContentCopy(ctx, st, js); err != nil {
		log.Warn("seed: content copy in NATS not saved", "err", err)
	} else if saved {
		log.Info("seed: content copy in NATS saved", "bucket", events.ContentBucket)
	}
	if changed == 0 {
		return nil
	}
	if err := events.Notify(nc, events.SubjectContentChanged, nil); err != nil {
		return err
	}
	log.Info("seed: API instances told to reload content")
	return nil
}

func runAPI(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	f := newFlags("api", getenv, stderr)
	f.common(&c)
	f.database(&c)
	f.nats(&c, true)
	f.metrics(&c, "127.0.0.1:9090")
	f.stream(&c)
	f.api(&c)
	f.shutdown(&c)
	log, err := setup(f, &c, args, "api", stderr)
	if err != nil {
		return err
	}
	if c.NATSURL == "" {
		return errors.New("NATS_URL is required")
	}
	return serve(ctx, c.app(log, true, false, 0), stdout)
}

func runWorker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	f := newFlags("worker", getenv, stderr)
	f.common(&c)
	f.database(&c)
	f.nats(&c, true)
	f.metrics(&c, "127.0.0.1:9091")
	f.stream(&c)
	f.worker(&c)
	f.shutdown(&c)
	f.int(&c.Workers, "WORKERS", worker.DefaultWriters, "concurrent batch writers in this process")
	log, err := setup(f, &c, args, "worker", stderr)
	if err != nil {
		return err
	}
	if c.NATSURL == "" {
		return errors.New("NATS_URL is required")
	}
	return serve(ctx, c.app(log, false, false, c.Workers), stdout)
}

func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	f := newFlags("dev", getenv, stderr)
	f.common(&c)
	f.database(&c)
	f.nats(&c, false)
	f.metrics(&c, "127.0.0.1:9090")
	f.stream(&c)
	f.api(&c)
	f.worker(&c)
	f.shutdown(&c)
	f.int(&c.Workers, "WORKERS", worker.DefaultWriters, "concurrent batch writers")
	f.str(&c.DataDir, "DATA_DIR", ".quizstream", "folder of the embedded NATS server's file store")
	f.int(&c.NATSPort, "NATS_PORT", -1, "port of the embedded NATS server; -1 picks a free one")
	log, err := setup(f, &c, args, "dev", stderr)
	if err != nil {
		return err
	}
	if c.NATSURL == "" {
		// The embedded server lets in one user, who holds the NKey seed
		// kept under DATA_DIR (or at NATS_NKEY_SEED_FILE): no process
		// without it can publish an event.
		if a := c.NATSAuth; a.User != "" || a.Password != "" || a.Token != "" || a.CredsFile != "" {
			return errors.New("dev: the embedded NATS server takes only NATS_NKEY_SEED_FILE; NATS_USER, NATS_PASSWORD, NATS_TOKEN and NATS_CREDS need NATS_URL")
		}
		ns, seedFile, err := events.StartDevServer(events.DevServer{DataDir: c.DataDir, SeedFile: c.NATSAuth.NKeySeedFile, Port: c.NATSPort})
		if err != nil {
			return err
		}
		defer ns.WaitForShutdown()
		defer ns.Shutdown()
		c.NATSURL, c.NATSAuth = ns.ClientURL(), app.NATSAuth{NKeySeedFile: seedFile}
		log.Info("dev: embedded NATS server started", "url", c.NATSURL, "store_dir", ns.StoreDir(),
			"sync", "always", "nats_nkey_seed_file", seedFile)
	}
	if err := app.PrepareDatabase(ctx, c.DatabaseURL, log); err != nil {
		return err
	}
	return serve(ctx, c.app(log, true, true, c.Workers), stdout)
}

// serve runs one process as cfg says until ctx ends, printing the API's
// address once it listens.
func serve(ctx context.Context, cfg app.Config, stdout io.Writer) error {
	a, err := app.New(ctx, cfg)
	if err != nil {
		return err
	}
	if u := a.URL(); u != "" {
		fmt.Fprintf(stdout, "quizstream API listening on %s/api/v1/courses\n", u)
	}
	return a.Run(ctx)
}

// connectJetStream opens the NATS connection of an operator command; the
// caller closes it.
func connectJetStream(url string, auth app.NATSAuth, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := app.Connect(url, auth, log)
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
