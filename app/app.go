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
	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/health"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/tail"
	"github.com/quizstream/quizstream/worker"
)

// Config is what one quizstream process runs and where.
type Config struct {
	// DatabaseURL and NATSURL are required.
	DatabaseURL string
	NATSURL     string
	// NATSAuth is the process's NATS identity. The zero value sends none
	// (beyond what NATSURL carries).
	NATSAuth NATSAuth
	// DatabaseConnectTimeout bounds each new PostgreSQL connection.
	// Defaults to the store's 5s.
	DatabaseConnectTimeout time.Duration
	// Stream sizes the attempts stream and its consumer.
	Stream streams.StreamConfig
	// ApplyStream creates or updates the streams, the consumer and the
	// content bucket as Stream says (streams.Apply, refusing to lower what
	// the stream keeps) before checking them: for `quizstream dev` and
	// tests, which own their server. Otherwise the process only checks
	// them, refuses to start when the durability settings differ or the
	// stream does not exist, and warns on the rest: the operator applies
	// settings with `quizstream stream apply`.
	ApplyStream bool

	// API serves the HTTP API on ListenAddr when true.
	API bool
	// ListenAddr is the public listener. Defaults to 127.0.0.1:8080.
	ListenAddr string
	// APIConfig holds the API's settings; App fills its Store, Events,
	// Notices, Logger and Registerer.
	APIConfig api.Config
	// Publish sizes the coalescing of concurrent attempt publishes into
	// atomic batches (eventlog.BatchConfig; App fills its Logger).
	Publish eventlog.BatchConfig

	// Workers is how many batch writers this process runs. Defaults to 0.
	Workers int
	// WorkerConfig holds the workers' settings; App fills its AckWait from
	// Stream, and its Logger and Registerer.
	WorkerConfig worker.Config
	// Exams sizes the exams streams (its zero Replicas takes Stream's), and
	// ExamWorker the exam loops every worker process runs (App fills its
	// AckWait, Logger and Registerer): app/exams.go.
	Exams      streams.ExamStreamConfig
	ExamWorker worker.ExamConfig
	// Checks sizes the code-checks stream (its zero Replicas takes
	// Stream's); Checker configures the checker role: app/checks.go.
	Checks  streams.CheckStreamConfig
	Checker CheckerConfig

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
	Log      *eventlog.Log
	Tail     *tail.Tail        // the API's view of unsettled attempts
	Batcher  *eventlog.Batcher // the API's publisher
	API      *api.Server
	Workers  []*worker.Worker
	Registry *prometheus.Registry
	// Exams is the exams log; ExamWorker the exam loops, when the process
	// runs workers (app/exams.go).
	Exams      *eventlog.ExamLog
	ExamWorker *worker.ExamWorker
	// Checks is the code-checks log; Checker the role, if run (app/checks.go).
	Checks        *eventlog.CheckLog
	Checker       *worker.Checker
	checkerClient *checker.Client
	// Model is the student read model: workers fold into it, the API reads
	// it (app/readmodel.go).
	Model *readmodel.Model

	cfg     Config
	log     *slog.Logger
	ackWait map[string]time.Duration // each consumer's, as found
	ready   *health.Readiness
	ln      net.Listener // public, when the API runs, until Run takes it
	ops     net.Listener // operations, when enabled, until Run takes it
	url     string
	opsURL  string
}

// New connects to PostgreSQL and NATS, checks the stream (or applies its
// settings, with ApplyStream), builds what cfg
// asks for and opens its listeners, so that URL answers before Run. It
// returns the first error, with everything it opened closed again.
func New(ctx context.Context, cfg Config) (_ *App, err error) {
	if cfg.DatabaseURL == "" || cfg.NATSURL == "" {
		return nil, errors.New("app: Config.DatabaseURL and Config.NATSURL are required")
	}
	if !cfg.API && cfg.Workers <= 0 && !cfg.Checker.Run {
		return nil, errors.New("app: Config.API, Config.Workers or Config.Checker.Run must be set")
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
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoCollector())
	// Lazy: an API starts, serves content and takes attempts while
	// PostgreSQL is down; workers wait for it.
	if a.Store, err = store.Open(ctx, store.Config{URL: cfg.DatabaseURL, ConnectTimeout: cfg.DatabaseConnectTimeout, Registerer: a.Registry, Lazy: true}); err != nil {
		return nil, err
	}
	if a.Conn, err = Connect(cfg.NATSURL, cfg.NATSAuth, a.log); err != nil {
		return nil, err
	}
	if a.JS, err = jetstream.New(a.Conn); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	a.warnDurability()
	if err := a.openStream(ctx); err != nil {
		return nil, err
	}
	if err := a.openReadModel(ctx); err != nil {
		return nil, err
	}

	if err := a.buildWorkers(ctx); err != nil {
		return nil, err
	}
	if err := a.openExams(ctx); err != nil {
		return nil, err
	}
	if err := a.openChecks(ctx); err != nil {
		return nil, err
	}
	if cfg.API {
		if a.Tail, err = tail.NewTail(ctx, a.Log, tail.TailConfig{Logger: a.log, Registerer: a.Registry}); err != nil {
			return nil, err
		}
		ac := cfg.APIConfig
		ac.Store, ac.Notices, ac.Logger, ac.Registerer = a.Store, events.NewNotices(a.Conn), a.log, a.Registry
		ac.Exams.Log, ac.Checks = a.Exams, a.Checks
		if a.Model != nil {
			ac.ReadModel = apiModel{a.Model, a.Store}
		}
		pc := cfg.Publish
		pc.Logger, pc.Index = a.log, a.Tail
		if a.Batcher, err = eventlog.NewBatcher(ctx, a.Log, pc); err != nil {
			return nil, err
		}
		a.Registry.MustRegister(eventlog.NewBatchCollector(a.Batcher))
		a.log.Info("events: attempt publishes", "atomic_batches", a.Batcher.Batching(),
			"window", pc.Window, "max_messages", pc.MaxMessages)
		ac.Events = eventLog{publisher: a.Batcher, Tail: a.Tail, log: a.Log}
		ac.ContentCopy = streams.NewContentSnapshots(a.JS)
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

// openStream applies every family's stream settings when the process
// owns them (ApplyStream), checks what it finds against its configuration,
// and opens the attempts Log. A process refuses to start when any family's
// stream or consumer is missing or its durability differs (replicas,
// storage, retention, discard, the consumer's acknowledgement), naming
// `quizstream stream apply`, and warns on the rest.
func (a *App) openStream(ctx context.Context) error {
	s := a.cfg.Stream
	families := streams.Declared(s, a.cfg.Exams, a.cfg.Checks)
	if a.cfg.ApplyStream {
		res, err := streams.Apply(ctx, a.JS, false, families...)
		if errors.Is(err, streams.ErrRefused) {
			return fmt.Errorf("events: %w: %s", err, describe(res.Refused))
		}
		if err != nil {
			return err
		}
		if len(res.Created) > 0 || len(res.Changed) > 0 {
			a.log.Info("events: stream settings applied", "created", res.Created, "changed", describe(res.Changed))
		}
	}
	check, err := streams.Check(ctx, a.JS, families...)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if fatal := check.Fatal(); len(fatal) > 0 {
		changes := make([]streams.Change, len(fatal))
		for i, m := range fatal {
			changes[i] = m.Change
		}
		return fmt.Errorf("events: a stream's durability differs from this process's configuration (found -> configured): %s; "+
			"fix the configuration, or apply it with `quizstream stream apply`", describe(changes))
	}
	for _, m := range check.Mismatches {
		msg := "events: a stream setting differs from this process's configuration; `quizstream stream apply` applies it"
		if m.Field == "allow_atomic" {
			msg = "events: a stream does not allow atomic batches: its events are published one at a time; `quizstream stream apply` allows them"
		}
		a.log.Warn(msg, "object", m.Object, "setting", m.Field, "found", m.Was, "configured", m.Now)
	}
	if a.cfg.Workers > 0 && a.cfg.Stream.ReadModel && len(check.Missing) > 0 {
		return fmt.Errorf("events: %s: %w", strings.Join(check.Missing, ", "), streams.ErrNotApplied)
	}
	if a.cfg.API && !check.ContentBucket {
		a.log.Warn("events: no content bucket: an API instance starting while PostgreSQL is down cannot serve; `quizstream stream apply` creates it",
			"bucket", streams.ContentBucket)
	}
	a.ackWait = check.AckWait
	if a.Log, err = eventlog.OpenLog(ctx, a.JS, s); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if a.cfg.Stream.ReadModel {
		// Student reads answer from the model, so an event is settled for
		// them once the model's consumer has folded it too.
		a.Log.SettledAlsoBy(streams.ReadModelConsumer)
	}
	a.Registry.MustRegister(streams.NewStreamCollector(a.JS, families...))
	st, err := streams.Status(ctx, a.JS, families...)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	for _, f := range st.Families {
		for _, ss := range f.Streams {
			a.log.Info("events: stream ready", "family", f.Name, "stream", ss.Name, "replicas", ss.Replicas, "storage", ss.Storage,
				"duplicates", ss.Duplicates, "max_age", ss.MaxAge, "capacity", ss.Capacity.String(), "server_version", a.Conn.ConnectedServerVersion())
		}
	}
	return nil
}

// describe prints changes for a log line or an error.
func describe(changes []streams.Change) string {
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = fmt.Sprintf("%s %s %s -> %s", c.Object, c.Field, c.Was, c.Now)
		if c.Reason != "" {
			parts[i] += " (" + c.Reason + ")"
		}
	}
	return strings.Join(parts, "; ")
}

func (a *App) buildWorkers(ctx context.Context) error {
	if a.cfg.Workers <= 0 {
		return nil
	}
	cons, err := a.Log.Consumer(ctx)
	if err != nil {
		return err
	}
	dl, err := streams.LookupDeadLetters(ctx, a.JS, a.cfg.Stream)
	if err != nil {
		return err
	}
	wc := a.cfg.WorkerConfig
	// The consumer's AckWait as found, not as configured: the heartbeat
	// must beat the redelivery the server actually does.
	wc.AckWait, wc.Logger, wc.Registerer = a.ackWait[a.cfg.Stream.Consumer], a.log, a.Registry
	for range a.cfg.Workers {
		w, err := worker.New(cons, a.Store, dl, wc)
		if err != nil {
			return err
		}
		a.Workers = append(a.Workers, w)
	}
	return a.buildModelWorker(ctx, cons, wc)
}

// readiness is the process's rule, the same on both listeners: an API is
// ready as the API says (event log and content); a worker needs NATS and
// PostgreSQL as well.
func (a *App) readiness() *health.Readiness {
	r := health.New(1)
	if a.API != nil {
		r = a.API.Readiness()
	}
	r = a.checkerReadiness(r)
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
	if a.ExamWorker != nil {
		g.Go(func() error { return a.ExamWorker.Run(gctx) })
	}
	if a.Checker != nil {
		g.Go(func() error { return a.Checker.Run(gctx) })
	}
	if a.ops != nil {
		ops := a.ops
		a.ops = nil
		g.Go(func() error { return serveOps(gctx, ops, a.Registry, a.ready, a.cfg.Profiling, a.log) })
	}
	err := g.Wait()
	a.closeEvents()
	if derr := drain(a.Conn); derr != nil {
		a.log.Warn("quizstream: nats drain", "err", derr)
	}
	return err
}

// eventLog is the API's event log: attempts are published through the
// publisher, student reads are answered from the tail, and the stream's
// fill and retention come from the log. It holds every method of
// api.EventLog, which the compiler checks here.
type eventLog struct {
	publisher
	*tail.Tail
	log *eventlog.Log
}

var _ api.EventLog = eventLog{}

func (e eventLog) Capacity(ctx context.Context) (streams.Capacity, error) { return e.log.Capacity(ctx) }

func (e eventLog) Trimmed(ctx context.Context) bool { return e.log.Trimmed(ctx) }

type publisher interface {
	PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (eventlog.Published, error)
}

// closeEvents stops the publishers and the tail, once the API and the
// workers have stopped: the batches in flight are answered first.
func (a *App) closeEvents() {
	if a.Batcher != nil {
		a.Batcher.Close()
		a.Batcher = nil
	}
	if a.Tail != nil {
		a.Tail.Close()
		a.Tail = nil
	}
	if a.Exams != nil {
		a.Exams.Close()
		a.Exams = nil
	}
	if a.Checks != nil {
		a.Checks.Close()
		a.Checks = nil
	}
	if a.checkerClient != nil {
		a.checkerClient.Close()
		a.checkerClient = nil
	}
	if a.Model != nil {
		a.Model.Close()
		a.Model = nil
	}
}

// Close releases what New opened and Run did not; it is safe to call twice.
func (a *App) Close() {
	for _, ln := range []net.Listener{a.ln, a.ops} {
		if ln != nil {
			ln.Close()
		}
	}
	a.ln, a.ops = nil, nil
	a.closeEvents()
	if a.Conn != nil {
		a.Conn.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
}

// NATSAuth is how a process proves to NATS that it is quizstream: at most
// one of a user and password, a token, a credentials file (a user JWT and
// its NKey seed, for servers in operator mode) or an NKey seed file. The
// zero value sends no credentials beyond those in the URL.
type NATSAuth struct {
	User, Password string
	Token          string
	CredsFile      string
	NKeySeedFile   string
}

// options returns the nats.go options for a, or why a is not one identity.
func (a NATSAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.User != "" || a.Password != "" {
		if a.User == "" || a.Password == "" {
			return nil, errors.New("nats credentials: a user needs a password, and a password a user")
		}
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.Token != "" {
		opts = append(opts, nats.Token(a.Token))
	}
	if a.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats credentials: %w", err)
		}
		opts = append(opts, o)
	}
	if len(opts) > 1 {
		return nil, errors.New("nats credentials: give one of a user and password, a token, a creds file or an NKey seed file")
	}
	return opts, nil
}

// Connect opens the NATS connection every quizstream process uses, with
// the identity auth gives: it reconnects for ever and buffers nothing
// while away, so that a publish fails at once (the client gets its 503
// now, not after the publish timeout) rather than going out unseen when
// the connection returns. A server that refuses the identity is an error
// at once.
func Connect(url string, auth NATSAuth, log *slog.Logger) (*nats.Conn, error) {
	opts, err := auth.options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(opts,
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
	)...)
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
		// A part that does not start with a number ends the version: it and
		// the parts after it count as 0, so an unreadable version reads as
		// older (and is warned about). "3-RC.1" reads as 3.
		if _, err := fmt.Sscanf(p, "%d", &v[i]); err != nil {
			break
		}
	}
	want := [3]int{major, minor, patch}
	for i := range v {
		if v[i] != want[i] {
			return v[i] > want[i]
		}
	}
	return true
}
