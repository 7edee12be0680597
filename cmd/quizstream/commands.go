package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

func newLogger(c *config, stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
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
	return migrate(ctx, st, log)
}

func migrate(ctx context.Context, st *store.Store, log *slog.Logger) error {
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info("migrate: schema is current", "applied", applied)
	return nil
}

func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	f := newFlags("seed", getenv, stderr)
	f.common(&c)
	f.database(&c)
	f.secretURL(&c.NATSURL, "NATS_URL", "", "NATS server URL(s); when set, running API instances are told to reload content")
	log, err := setup(f, &c, args, "seed", stderr)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	changed, err := seed(ctx, st, log)
	if err != nil || changed == 0 || c.NATSURL == "" {
		return err
	}
	nc, err := connectNATS(c.NATSURL, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := events.Notify(nc, events.SubjectContentChanged, nil); err != nil {
		return err
	}
	log.Info("seed: API instances told to reload content")
	return nil
}

// seed loads the demo content and returns how many rows it changed.
func seed(ctx context.Context, st *store.Store, log *slog.Logger) (int64, error) {
	changed, err := st.SaveContent(ctx, store.DemoContent(store.DefaultDemo))
	if err != nil {
		return 0, err
	}
	log.Info("seed: demo content loaded", "rows_changed", changed)
	return changed, nil
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
	return serve(ctx, &c, log, stdout, true, 0)
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
	f.int(&c.Workers, "WORKERS", 1, "concurrent batch writers in this process")
	log, err := setup(f, &c, args, "worker", stderr)
	if err != nil {
		return err
	}
	if c.NATSURL == "" {
		return errors.New("NATS_URL is required")
	}
	return serve(ctx, &c, log, stdout, false, c.Workers)
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
	f.int(&c.Workers, "WORKERS", 2, "concurrent batch writers")
	f.str(&c.DataDir, "DATA_DIR", ".quizstream", "folder of the embedded NATS server's file store")
	f.int(&c.NATSPort, "NATS_PORT", -1, "port of the embedded NATS server; -1 picks a free one")
	log, err := setup(f, &c, args, "dev", stderr)
	if err != nil {
		return err
	}
	if c.NATSURL == "" {
		dir, err := filepath.Abs(filepath.Join(c.DataDir, "nats"))
		if err != nil {
			return err
		}
		ns, err := events.StartServer(events.ServerConfig{Dir: dir, Port: c.NATSPort, SyncAlways: true})
		if err != nil {
			return err
		}
		defer ns.WaitForShutdown()
		defer ns.Shutdown()
		c.NATSURL = ns.ClientURL()
		log.Info("dev: embedded NATS server started", "url", c.NATSURL, "store_dir", dir, "sync", "always")
	}
	created, err := store.EnsureDatabase(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	if created {
		log.Info("dev: database created", "url", redact(c.DatabaseURL))
	}
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	err = migrate(ctx, st, log)
	if err == nil {
		_, err = seed(ctx, st, log)
	}
	st.Close()
	if err != nil {
		return err
	}
	return serve(ctx, &c, log, stdout, true, c.Workers)
}

// serve runs an API (when withAPI) and workers (how many) on one store
// and one NATS connection until ctx ends, then drains them in order.
func serve(ctx context.Context, c *config, log *slog.Logger, stdout io.Writer, withAPI bool, workers int) error {
	if err := c.Stream.Validate(); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, nc, js, closeAll, err := connect(ctx, c, log, reg)
	if err != nil {
		return err
	}
	defer closeAll()
	warnDurability(nc, c, log, workers > 0 && withAPI)
	lg, err := events.NewLog(ctx, js, c.Stream)
	if err != nil {
		return err
	}
	if changed := lg.Changed(); len(changed) > 0 {
		log.Warn("events: this process changed the stream's settings", "changes", changed)
	}
	reg.MustRegister(events.NewStreamCollector(lg))
	log.Info("events: stream ready", "stream", c.Stream.Name, "replicas", c.Stream.Replicas, "storage", "file",
		"duplicates", c.Stream.Duplicates, "max_age", c.Stream.MaxAge, "max_bytes", c.Stream.MaxBytes,
		"consumer", c.Stream.Consumer, "ack_wait", c.Stream.AckWait, "max_ack_pending", c.Stream.MaxAckPending,
		"server_version", nc.ConnectedServerVersion())

	var srv *api.Server
	var ln net.Listener
	if withAPI {
		srv, err = api.NewServer(ctx, api.Config{
			Store: st, Events: lg, Notices: events.NewNotices(nc), Logger: log, Registerer: reg,
			BodyLimit: int64(c.BodyLimit), TokenLifetime: c.TokenLifetime, TokenCacheTTL: c.TokenCacheTTL,
			ContentMaxAge: c.ContentMaxAge, ContentReload: c.ContentReload, PublishTimeout: c.PublishTimeout,
			DrainDelay: c.DrainDelay, ShutdownTimeout: c.Worker.ShutdownTimeout,
		})
		if err != nil {
			return err
		}
	}
	var ws []*worker.Worker
	if workers > 0 {
		cons, err := lg.Consumer(ctx)
		if err != nil {
			return err
		}
		dl, err := events.EnsureDeadLetters(ctx, js, c.Stream)
		if err != nil {
			return err
		}
		wcfg := c.Worker
		wcfg.AckWait, wcfg.Logger, wcfg.Registerer = c.Stream.AckWait, log, reg
		for range workers {
			w, err := worker.New(cons, st, dl, wcfg)
			if err != nil {
				return err
			}
			ws = append(ws, w)
		}
	}

	if srv != nil { // last, so that no early return leaves it open
		if ln, err = net.Listen("tcp", c.ListenAddr); err != nil {
			return fmt.Errorf("listen %s: %w", c.ListenAddr, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	if srv != nil {
		g.Go(func() error { return srv.Serve(gctx, ln) })
		fmt.Fprintf(stdout, "quizstream API listening on http://%s/api/v1/courses\n", ln.Addr())
	}
	for _, w := range ws {
		g.Go(func() error { return w.Run(gctx) })
	}
	if c.MetricsAddr != "" && c.MetricsAddr != "off" {
		ready := func(ctx context.Context) error {
			if !nc.IsConnected() {
				return errors.New("nats: not connected")
			}
			if workers > 0 {
				return st.Ping(ctx)
			}
			return nil
		}
		g.Go(func() error { return serveOps(gctx, c.MetricsAddr, reg, ready, log) })
	}
	err = g.Wait()
	if derr := drain(nc); derr != nil {
		log.Warn("quizstream: nats drain", "err", derr)
	}
	return err
}

// connect opens what the long-running commands need: the store (its
// metrics on reg, when set) and the NATS connection with JetStream. The
// returned function closes both.
func connect(ctx context.Context, c *config, log *slog.Logger, reg prometheus.Registerer) (*store.Store, *nats.Conn, jetstream.JetStream, func(), error) {
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL, Registerer: reg})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	nc, err := connectNATS(c.NATSURL, log)
	if err != nil {
		st.Close()
		return nil, nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		st.Close()
		return nil, nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return st, nc, js, func() { nc.Close(); st.Close() }, nil
}

func connectNATS(url string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name("quizstream"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		// No buffering while disconnected: a publish fails at once (the
		// client gets its 503 now, not after PUBLISH_TIMEOUT), rather than
		// going out unseen when the connection returns.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when we closed it ourselves
				log.Warn("nats: disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats: reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	return nc, nil
}

// drain flushes what the connection holds (the last acks above all) and
// waits for it to close.
func drain(nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		return err
	}
	select {
	case <-closed:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("drain timed out")
	}
}

// warnDurability logs what DESIGN.md asks operators to know: servers older
// than 2.12.3 can lose acknowledged writes, and R1 is durable only on a
// server that syncs every write.
func warnDurability(nc *nats.Conn, c *config, log *slog.Logger, dev bool) {
	version := nc.ConnectedServerVersion()
	if !atLeast(version, 2, 12, 3) {
		log.Warn("nats: server older than 2.12.3, which has known acknowledged-write loss", "server_version", version)
	}
	if c.Stream.Replicas == 1 && !dev {
		log.Warn("nats: the attempts stream is R1: durable only if the server runs with sync_interval: always")
	}
}

func atLeast(version string, major, minor, patch int) bool {
	var v [3]int
	for i, p := range strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3) {
		fmt.Sscanf(p, "%d", &v[i])
	}
	want := [3]int{major, minor, patch}
	for i := range v {
		if v[i] != want[i] {
			return v[i] > want[i]
		}
	}
	return true
}

// serveOps serves /metrics, /livez and /readyz on the operations listener.
func serveOps(ctx context.Context, addr string, reg *prometheus.Registry, ready func(context.Context) error, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ctx.Err() != nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := ready(r.Context()); err != nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	log.Info("quizstream: operations listener", "addr", ln.Addr().String())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
