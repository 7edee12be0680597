// Package app is quizstream's one wiring: it connects the store and the
// event log, builds the API and the workers a process runs, and serves
// them with the operations listener until told to stop. The binary and the
// tests both run it, so a wiring change cannot pass the tests and break the
// binary.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/health"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

// Config is what one quizstream process runs and where.
type Config struct {
	// DatabaseURL and NATSURL are required.
	DatabaseURL string
	NATSURL     string
	// DatabaseConnectTimeout bounds each new PostgreSQL connection.
	// Defaults to the store's 5s.
	DatabaseConnectTimeout time.Duration
	// Stream sizes the attempts stream and its consumer.
	Stream events.StreamConfig

	// API serves the HTTP API on ListenAddr when true.
	API bool
	// ListenAddr is the public listener. Defaults to 127.0.0.1:8080.
	ListenAddr string
	// APIConfig holds the API's settings; App fills its Store, Events,
	// Notices, Logger and Registerer.
	APIConfig api.Config

	// Workers is how many batch writers this process runs. Defaults to 0.
	Workers int
	// WorkerConfig holds the workers' settings; App fills its AckWait from
	// Stream, and its Logger and Registerer.
	WorkerConfig worker.Config

	// MetricsAddr is the operations listener (/metrics, /livez, /readyz);
	// empty or "off" disables it.
	MetricsAddr string
	// Profiling serves Go's profiles (/debug/pprof/) on the operations
	// listener. Defaults to off: a profile costs CPU and shows internals.
	Profiling bool
	// Dev says the process runs everything in one with its own NATS server:
	// it only quiets the warning about an R1 stream.
	Dev bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// App is one running quizstream process: its connections, its API and its
// workers.
type App struct {
	Store    *store.Store
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Log      *events.Log
	Tail     *events.Tail // the API's view of unsettled attempts
	API      *api.Server
	Workers  []*worker.Worker
	Registry *prometheus.Registry

	cfg    Config
	log    *slog.Logger
	ready  *health.Readiness
	ln     net.Listener // public, when the API runs, until Run takes it
	ops    net.Listener // operations, when enabled, until Run takes it
	url    string
	opsURL string
}

// New connects to PostgreSQL and NATS, ensures the stream, builds what cfg
// asks for and opens its listeners, so that URL answers before Run. It
// returns the first error, with everything it opened closed again.
func New(ctx context.Context, cfg Config) (_ *App, err error) {
	if cfg.DatabaseURL == "" || cfg.NATSURL == "" {
		return nil, errors.New("app: Config.DatabaseURL and Config.NATSURL are required")
	}
	if !cfg.API && cfg.Workers <= 0 {
		return nil, errors.New("app: Config.API or Config.Workers must be set")
	}
	if err := cfg.Stream.Validate(); err != nil {
		return nil, err
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:8080"
	}
	if cfg.MetricsAddr == "off" {
		cfg.MetricsAddr = ""
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &App{cfg: cfg, log: cfg.Logger, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.Store, err = store.Open(ctx, store.Config{URL: cfg.DatabaseURL, ConnectTimeout: cfg.DatabaseConnectTimeout, Registerer: a.Registry}); err != nil {
		return nil, err
	}
	if a.Conn, err = Connect(cfg.NATSURL, a.log); err != nil {
		return nil, err
	}
	if a.JS, err = jetstream.New(a.Conn); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	a.warnDurability()
	if a.Log, err = events.NewLog(ctx, a.JS, cfg.Stream); err != nil {
		return nil, err
	}
	if changed := a.Log.Changed(); len(changed) > 0 {
		a.log.Warn("events: this process changed the stream's settings", "changes", changed)
	}
	a.Registry.MustRegister(events.NewStreamCollector(a.Log))
	s := cfg.Stream
	a.log.Info("events: stream ready", "stream", s.Name, "replicas", s.Replicas, "storage", "file",
		"duplicates", s.Duplicates, "max_age", s.MaxAge, "max_bytes", s.MaxBytes, "consumer", s.Consumer,
		"ack_wait", s.AckWait, "max_ack_pending", s.MaxAckPending, "server_version", a.Conn.ConnectedServerVersion())

	if err := a.buildWorkers(ctx); err != nil {
		return nil, err
	}
	if cfg.API {
		if a.Tail, err = events.NewTail(ctx, a.Log, events.TailConfig{Logger: a.log, Registerer: a.Registry}); err != nil {
			return nil, err
		}
		ac := cfg.APIConfig
		ac.Store, ac.Notices, ac.Logger, ac.Registerer = a.Store, events.NewNotices(a.Conn), a.log, a.Registry
		ac.Events = eventLog{publisher: a.Log, Tail: a.Tail}
		if a.API, err = api.NewServer(ctx, ac); err != nil {
			return nil, err
		}
		if a.ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("listen %s: %w", cfg.ListenAddr, err)
		}
		a.url = "http://" + a.ln.Addr().String()
	}
	a.ready = a.readiness()
	if cfg.MetricsAddr != "" {
		if a.ops, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listen %s: %w", cfg.MetricsAddr, err)
		}
		a.opsURL = "http://" + a.ops.Addr().String()
	}
	return a, nil
}

func (a *App) buildWorkers(ctx context.Context) error {
	if a.cfg.Workers <= 0 {
		return nil
	}
	cons, err := a.Log.Consumer(ctx)
	if err != nil {
		return err
	}
	dl, err := events.EnsureDeadLetters(ctx, a.JS, a.cfg.Stream)
	if err != nil {
		return err
	}
	wc := a.cfg.WorkerConfig
	wc.AckWait, wc.Logger, wc.Registerer = a.cfg.Stream.AckWait, a.log, a.Registry
	for range a.cfg.Workers {
		w, err := worker.New(cons, a.Store, dl, wc)
		if err != nil {
			return err
		}
		a.Workers = append(a.Workers, w)
	}
	return nil
}

// readiness is the process's rule, the same on both listeners: an API is
// ready as the API says (event log and content); a worker needs NATS and
// PostgreSQL as well.
func (a *App) readiness() *health.Readiness {
	r := health.New(1)
	if a.API != nil {
		r = a.API.Readiness()
	}
	if len(a.Workers) == 0 {
		return r
	}
	return r.With(
		health.Check{Name: "nats", Required: true, Probe: func(context.Context) error {
			if !a.Conn.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		}},
		health.Check{Name: "postgres_for_workers", Required: true, Probe: a.Store.Ping},
	)
}

// URL returns the API's base URL, or "" when the process runs no API.
func (a *App) URL() string { return a.url }

// OpsURL returns the operations listener's base URL, or "" when it is off.
func (a *App) OpsURL() string { return a.opsURL }

// Run serves the API, the workers and the operations listener until ctx
// ends, then drains them in order: the API finishes its requests, each
// worker the batch in hand, and the NATS connection flushes the last acks.
// It returns the first error that stopped a part early, and closes the App.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	g, gctx := errgroup.WithContext(ctx)
	if a.API != nil {
		ln := a.ln
		a.ln = nil // Serve owns it now
		g.Go(func() error { return a.API.Serve(gctx, ln) })
	}
	for _, w := range a.Workers {
		g.Go(func() error { return w.Run(gctx) })
	}
	if a.ops != nil {
		ops := a.ops
		a.ops = nil
		g.Go(func() error { return serveOps(gctx, ops, a.Registry, a.ready, a.cfg.Profiling, a.log) })
	}
	err := g.Wait()
	if a.Tail != nil {
		a.Tail.Close()
		a.Tail = nil
	}
	if derr := drain(a.Conn); derr != nil {
		a.log.Warn("quizstream: nats drain", "err", derr)
	}
	return err
}

// eventLog is the API's event log: attempts are published through the
// publisher, and student reads answered from the tail.
type eventLog struct {
	publisher
	*events.Tail
}

type publisher interface {
	PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (events.Published, error)
}

// Close releases what New opened and Run did not; it is safe to call twice.
func (a *App) Close() {
	for _, ln := range []net.Listener{a.ln, a.ops} {
		if ln != nil {
			ln.Close()
		}
	}
	a.ln, a.ops = nil, nil
	if a.Tail != nil {
		a.Tail.Close()
		a.Tail = nil
	}
	if a.Conn != nil {
		a.Conn.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
}

// Connect opens the NATS connection every quizstream process uses: it
// reconnects for ever and buffers nothing while away, so that a publish
// fails at once (the client gets its 503 now, not after the publish
// timeout) rather than going out unseen when the connection returns.
func Connect(url string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name("quizstream"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
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
	if nc.IsClosed() {
		return nil
	}
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

// warnDurability logs what operators must know (docs/architecture.md,
// "Durability modes"): servers older than 2.12.3 can lose acknowledged writes,
// and R1 is durable only on a server that syncs every write.
func (a *App) warnDurability() {
	version := a.Conn.ConnectedServerVersion()
	if !AtLeast(version, 2, 12, 3) {
		a.log.Warn("nats: server older than 2.12.3, which has known acknowledged-write loss", "server_version", version)
	}
	if a.cfg.Stream.Replicas == 1 && !a.cfg.Dev {
		a.log.Warn("nats: the attempts stream is R1: durable only if the server runs with sync_interval: always")
	}
}

// AtLeast reports whether a server version string ("v2.12.3", "2.15.2")
// is at least major.minor.patch.
func AtLeast(version string, major, minor, patch int) bool {
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
