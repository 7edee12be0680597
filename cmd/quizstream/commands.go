package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/natsserver"
	"github.com/quizstream/quizstream/store"
)

func newLogger(c *config, stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level // info for a command without settings
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil && c.LogLevel != "" {
		return nil, usageErr("LOG_LEVEL: %v", err)
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
	case "text", "":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, usageErr("LOG_FORMAT must be text or json, not %q", c.LogFormat)
}

func runMigrate(ctx context.Context, c *config, in invocation) error {
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	return app.Migrate(ctx, st, in.log)
}

func runSeed(ctx context.Context, c *config, in invocation) error {
	log := in.log
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	changed, err := app.Seed(ctx, st, log)
	if err != nil || c.NATSURL == "" {
		return err
	}
	nc, js, err := app.ConnectJetStream(c.NATSURL, c.NATSAuth, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	return app.AnnounceContent(ctx, st, nc, js, changed > 0, log)
}

func runAPI(ctx context.Context, c *config, in invocation) error {
	if err := checkMigrated(ctx, c.DatabaseURL, in.log); err != nil {
		return err
	}
	return serve(ctx, c.app(in.log, true, false, 0), in.stdout)
}

func runWorker(ctx context.Context, c *config, in invocation) error {
	if err := checkMigrated(ctx, c.DatabaseURL, in.log); err != nil {
		return err
	}
	return serve(ctx, c.app(in.log, false, false, c.Workers), in.stdout)
}

// checkMigrated refuses to start on a database whose schema is behind
// this binary's, at once and saying what to run, rather than retrying
// writes that cannot succeed; a database that cannot be reached now is
// let be (an API serves without it, workers wait for it).
func checkMigrated(ctx context.Context, url string, log *slog.Logger) error {
	st, err := store.Open(ctx, store.Config{URL: url, ConnectTimeout: 2 * time.Second})
	if err == nil {
		defer st.Close()
		var current, target int64
		if current, target, err = st.SchemaVersions(ctx); err == nil && current < target {
			return fmt.Errorf("%w: its schema is at version %d, this binary needs %d: run quizstream migrate", errNotMigrated, current, target)
		}
	}
	if err != nil {
		log.Warn("quizstream: database schema not checked", "err", err)
	}
	return nil
}

func runDev(ctx context.Context, c *config, in invocation) error {
	log := in.log
	if c.NATSURL == "" {
		// The embedded server lets in one user, who holds the NKey seed
		// kept under DATA_DIR (or at NATS_NKEY_SEED_FILE): no process
		// without it can publish an event.
		if a := c.NATSAuth; a.User != "" || a.Password != "" || a.Token != "" || a.CredsFile != "" {
			return usageErr("dev: the embedded NATS server takes only NATS_NKEY_SEED_FILE; NATS_USER, NATS_PASSWORD, NATS_TOKEN and NATS_CREDS need NATS_URL")
		}
		ns, seedFile, err := natsserver.StartDevServer(natsserver.DevServer{DataDir: c.DataDir, SeedFile: c.NATSAuth.NKeySeedFile, Port: c.NATSPort})
		if err != nil {
			return err
		}
		defer ns.WaitForShutdown()
		defer ns.Shutdown()
		c.NATSURL, c.NATSAuth = ns.ClientURL(), app.NATSAuth{NKeySeedFile: seedFile}
		log.Info("dev: embedded NATS server started", "url", c.NATSURL, "store_dir", ns.StoreDir(),
			"sync", "always", "nats_nkey_seed_file", seedFile)
		fmt.Fprintf(in.stdout, "quizstream NATS listening on %s (nats CLI: nats --server %s --nkey %s)\n", c.NATSURL, c.NATSURL, seedFile)
	}
	if err := app.PrepareDatabase(ctx, c.DatabaseURL, log); err != nil {
		return err
	}
	cfg, err := c.checkerConfig(log, true, true, c.Workers)
	if err != nil {
		return err
	}
	cfg.Checker.Run = c.Checker.Client.URL != "" // one checker in process, given a code checker
	return serve(ctx, cfg, in.stdout)
}

// serve runs one process as cfg says until ctx ends, printing the API's
// address once it listens. A signal while it starts is a clean stop too.
func serve(ctx context.Context, cfg app.Config, stdout io.Writer) error {
	a, err := app.New(ctx, cfg)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return err
	}
	if u := a.URL(); u != "" {
		fmt.Fprintf(stdout, "quizstream API listening on %s/api/v1/courses\n", u)
	}
	return a.Run(ctx)
}
