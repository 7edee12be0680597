package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/worker"
)

// config is every setting of every command; each command registers the
// groups it uses.
type config struct {
	DatabaseURL string
	NATSURL     string
	ListenAddr  string
	MetricsAddr string
	LogLevel    string
	LogFormat   string

	Stream events.StreamConfig
	API    api.Config
	Worker worker.Config

	ShutdownTimeout time.Duration
	Profiling       bool

	DataDir  string
	NATSPort int
	Workers  int
}

// flags binds settings to environment variables with flag overrides: a
// flag beats its variable, which beats the default.
type flags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
	shown  []func() slog.Attr
}

func newFlags(name string, getenv func(string) string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet("quizstream "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flags{fs: fs, getenv: getenv}
}

func flagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

func (f *flags) env(env string, parse func(string) error) {
	if v := f.getenv(env); v != "" {
		if err := parse(v); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", env, v, err))
		}
	}
}

func (f *flags) str(p *string, env, def, usage string) {
	*p = def
	f.env(env, func(v string) error { *p = v; return nil })
	f.fs.StringVar(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string { return *p })
}

func (f *flags) secretURL(p *string, env, def, usage string) {
	*p = def
	f.env(env, func(v string) error { *p = v; return nil })
	f.fs.StringVar(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string { return redact(*p) })
}

func (f *flags) int(p *int, env string, def int, usage string) {
	*p = def
	f.env(env, func(v string) (err error) { *p, err = strconv.Atoi(v); return err })
	f.fs.IntVar(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string { return strconv.Itoa(*p) })
}

func (f *flags) int64(p *int64, env string, def int64, usage string) {
	*p = def
	f.env(env, func(v string) (err error) { *p, err = strconv.ParseInt(v, 10, 64); return err })
	f.fs.Int64Var(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string { return strconv.FormatInt(*p, 10) })
}

func (f *flags) bool(p *bool, env string, def bool, usage string) {
	*p = def
	f.env(env, func(v string) (err error) { *p, err = strconv.ParseBool(v); return err })
	f.fs.BoolVar(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string { return strconv.FormatBool(*p) })
}

func (f *flags) dur(p *time.Duration, env string, def time.Duration, usage string) {
	*p = def
	f.env(env, func(v string) (err error) { *p, err = time.ParseDuration(v); return err })
	f.fs.DurationVar(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string { return p.String() })
}

func (f *flags) show(env string, value func() string) {
	f.shown = append(f.shown, func() slog.Attr { return slog.String(strings.ToLower(env), value()) })
}

func (f *flags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return errUsage
	}
	if len(f.errs) > 0 {
		return fmt.Errorf("bad environment: %v", f.errs)
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", f.fs.Args())
	}
	return nil
}

// logConfig logs the effective configuration, secrets redacted.
func (f *flags) logConfig(log *slog.Logger, command string) {
	attrs := []any{slog.String("command", command)}
	for _, a := range f.shown {
		attrs = append(attrs, a())
	}
	log.Info("quizstream: configuration", attrs...)
}

// redact hides the password of a connection URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.Contains(raw, "password") {
			return "(redacted)"
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

const defaultDatabaseURL = "postgres://localhost:5432/quizstream?sslmode=disable"

func (f *flags) common(c *config) {
	f.str(&c.LogLevel, "LOG_LEVEL", "info", "log level: debug, info, warn or error")
	f.str(&c.LogFormat, "LOG_FORMAT", "text", "log format: text or json")
}

func (f *flags) database(c *config) {
	f.secretURL(&c.DatabaseURL, "DATABASE_URL", defaultDatabaseURL, "PostgreSQL connection URL")
}

func (f *flags) nats(c *config, required bool) {
	usage := "NATS server URL(s), comma-separated"
	if !required {
		usage += "; empty starts an embedded server"
	}
	f.secretURL(&c.NATSURL, "NATS_URL", "", usage)
}

func (f *flags) metrics(c *config, def string) {
	f.str(&c.MetricsAddr, "METRICS_ADDR", def, "operations listener for /metrics, /livez and /readyz; off disables it")
	f.bool(&c.Profiling, "PPROF", false, "serve Go's profiles under /debug/pprof/ on the operations listener")
}

func (f *flags) stream(c *config) {
	s := &c.Stream
	f.int(&s.Replicas, "STREAM_REPLICAS", events.DefaultReplicas, "replicas of the attempts stream: 1 (server must sync always) or 3")
	f.dur(&s.Duplicates, "STREAM_DUPLICATES", events.DefaultDuplicates, "duplicate window of the attempts stream")
	f.dur(&s.MaxAge, "STREAM_MAX_AGE", events.DefaultMaxAge, "how long the attempts stream keeps events")
	f.int64(&s.MaxBytes, "STREAM_MAX_BYTES", events.DefaultMaxBytes, "how many bytes the attempts stream keeps; past it publishes fail")
	f.dur(&s.AckWait, "ACK_WAIT", events.DefaultAckWait, "how long a worker may hold a message before it is redelivered")
	f.int(&s.MaxAckPending, "MAX_ACK_PENDING", events.DefaultMaxAckPending, "unacknowledged messages across all workers (>= workers x batch size)")
}

func (f *flags) shutdown(c *config) {
	f.dur(&c.ShutdownTimeout, "SHUTDOWN_TIMEOUT", worker.DefaultShutdownTimeout, "how long shutdown may take to finish the work in hand")
}

func (f *flags) api(c *config) {
	a := &c.API
	f.str(&c.ListenAddr, "LISTEN_ADDR", "127.0.0.1:8080", "public HTTP listen address")
	f.dur(&a.PublishTimeout, "PUBLISH_TIMEOUT", api.DefaultPublishTimeout, "how long an attempt POST waits for the stream before answering 503")
	f.dur(&a.TokenCacheTTL, "TOKEN_CACHE_TTL", api.DefaultTokenCacheTTL, "how long a token is trusted without asking PostgreSQL (bound on cross-instance logout)")
	f.dur(&a.TokenLifetime, "TOKEN_LIFETIME", api.DefaultTokenLifetime, "how long a login token lives")
	f.dur(&a.ContentReload, "CONTENT_RELOAD", api.DefaultContentReload, "how often content is reloaded from PostgreSQL; negative disables")
	f.dur(&a.ContentMaxAge, "CONTENT_MAX_AGE", api.DefaultContentMaxAge, "Cache-Control max-age of content responses")
	f.int64(&a.BodyLimit, "BODY_LIMIT", api.DefaultBodyLimit, "request body limit in bytes")
	f.dur(&a.DrainDelay, "DRAIN_DELAY", 0, "at shutdown, how long /readyz fails before the listener closes")
}

func (f *flags) worker(c *config) {
	w := &c.Worker
	f.int(&w.BatchSize, "BATCH_SIZE", worker.DefaultBatchSize, "messages per worker batch")
	f.dur(&w.MaxWait, "BATCH_MAX_WAIT", worker.DefaultMaxWait, "how long a fetch waits to fill a batch")
	f.dur(&w.MaxBackoff, "MAX_BACKOFF", worker.DefaultMaxBackoff, "longest pause between retries of a failing database write")
}

// app is the process's wiring configuration: what c says, with the
// shutdown timeout given to both the API and the workers.
func (c *config) app(log *slog.Logger, withAPI, dev bool, workers int) app.Config {
	ac, wc := c.API, c.Worker
	ac.ShutdownTimeout, wc.ShutdownTimeout = c.ShutdownTimeout, c.ShutdownTimeout
	return app.Config{
		DatabaseURL: c.DatabaseURL, NATSURL: c.NATSURL, Stream: c.Stream,
		API: withAPI, ListenAddr: c.ListenAddr, APIConfig: ac,
		Workers: workers, WorkerConfig: wc,
		MetricsAddr: c.MetricsAddr, Profiling: c.Profiling, Dev: dev, Logger: log,
	}
}
