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
	NATSAuth    app.NATSAuth
	ListenAddr  string
	MetricsAddr string
	LogLevel    string
	LogFormat   string
	// AccessLogLevel is ACCESS_LOG_LEVEL, parsed into API.AccessLogLevel
	// by newLogger.
	AccessLogLevel string

	Stream     events.StreamConfig
	API        api.Config
	Publish    events.BatchConfig
	Exams      events.ExamStreamConfig
	ExamWorker worker.ExamConfig
	Worker     worker.Config

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

// secret is a setting whose value is never shown: the logged configuration
// says only whether it is set.
func (f *flags) secret(p *string, env, usage string) {
	f.env(env, func(v string) error { *p = v; return nil })
	f.fs.StringVar(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string {
		if *p == "" {
			return ""
		}
		return "REDACTED"
	})
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

func (f *flags) float(p *float64, env string, def float64, usage string) {
	*p = def
	f.env(env, func(v string) (err error) { *p, err = strconv.ParseFloat(v, 64); return err })
	f.fs.Float64Var(p, flagName(env), *p, usage+" ($"+env+")")
	f.show(env, func() string { return strconv.FormatFloat(*p, 'g', -1, 64) })
}

// list binds a comma-separated list.
func (f *flags) list(p *[]string, env, usage string) {
	set := func(v string) error {
		*p = nil
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				*p = append(*p, x)
			}
		}
		return nil
	}
	f.env(env, set)
	f.fs.Func(flagName(env), usage+" ($"+env+")", set)
	f.show(env, func() string { return strings.Join(*p, ",") })
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

// redact hides the password of a connection URL, or of each URL of a
// comma-separated NATS list; a NATS URL's user without a password is a
// token, and hidden too.
func redact(raw string) string {
	if strings.Contains(raw, ",") && strings.Contains(raw, "://") {
		parts := strings.Split(raw, ",")
		for i, p := range parts {
			parts[i] = redact(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.Contains(raw, "password") || strings.Contains(raw, "@") {
			return "(redacted)"
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	} else if u.User != nil && natsSchemes[u.Scheme] {
		u.User = url.User("REDACTED")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// natsSchemes are the URL schemes of NATS servers, whose URL may carry a token.
var natsSchemes = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}

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
	f.natsAuth(c)
}

// natsAuth binds the process's NATS identity: one of a user and password,
// a token, a creds file or an NKey seed file.
func (f *flags) natsAuth(c *config) {
	a := &c.NATSAuth
	f.str(&a.User, "NATS_USER", "", "NATS user (with NATS_PASSWORD)")
	f.secret(&a.Password, "NATS_PASSWORD", "NATS password of NATS_USER")
	f.secret(&a.Token, "NATS_TOKEN", "NATS authentication token")
	f.str(&a.CredsFile, "NATS_CREDS", "", "NATS credentials file (user JWT and NKey seed)")
	f.str(&a.NKeySeedFile, "NATS_NKEY_SEED_FILE", "", "file holding the NATS user's NKey seed; in dev without NATS_URL, the embedded server's one user (default DATA_DIR/nats-dev.nk, created when missing)")
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
	f.int64(&s.MaxMsgs, "STREAM_MAX_MSGS", events.DefaultMaxMsgs, "how many events the attempts stream keeps (each a subject in the server's memory); past it publishes fail")
	f.dur(&s.AckWait, "ACK_WAIT", events.DefaultAckWait, "how long a worker may hold a message before it is redelivered")
	f.int64(&c.Exams.MaxBytes, "EXAMS_MAX_BYTES", events.DefaultMaxBytes, "how many bytes the exams stream keeps; past it starts, saves and submits answer 503")
	f.int64(&c.Exams.TimerMaxBytes, "EXAM_TIMERS_MAX_BYTES", events.DefaultExamTimerMaxBytes, "how many bytes the exam timers stream keeps")
	f.dur(&c.Exams.MaxAge, "EXAMS_MAX_AGE", events.DefaultMaxAge, "how long exam events and timers are kept; above the longest time limit plus grace")
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
	f.limits(c)
	f.dur(&a.Exams.Grace, "EXAM_GRACE", api.DefaultExamGrace, "grace_s of timed quizzes that set none: saves and submits that reach the API this long after the deadline count")
	f.dur(&a.Exams.Settle, "EXAM_SETTLE", api.DefaultExamSettle, "how long after deadline + grace a session's timer fires")
	f.int(&a.Exams.SessionCacheSize, "EXAM_SESSION_CACHE", api.DefaultSessionCacheSize, "exam sessions an API instance keeps in memory")
	f.dur(&c.Publish.Window, "PUBLISH_BATCH_WINDOW", events.DefaultBatchWindow, "longest an attempt waits for others to join its atomic batch")
	f.int(&c.Publish.MaxMessages, "PUBLISH_BATCH_MAX", events.DefaultBatchMaxMessages, "most attempts in one atomic batch (at most 1000)")
	f.str(&c.AccessLogLevel, "ACCESS_LOG_LEVEL", "debug", "level of the access log's lines, one a request: debug, info, warn, error or off")
	f.float(&a.AccessLogSample, "ACCESS_LOG_SAMPLE", 1, "share of requests the access log logs, from 0 to 1")
}

// limits binds the API's protections against hostile and careless
// traffic (docs/security.md); a negative rate or cap turns it off.
func (f *flags) limits(c *config) {
	a := &c.API
	f.dur(&a.ReadTimeout, "READ_TIMEOUT", api.DefaultReadTimeout, "longest a request, headers and body, may take to arrive (408 past it)")
	f.dur(&a.WriteTimeout, "WRITE_TIMEOUT", api.DefaultWriteTimeout, "longest a request may take to be answered; above PUBLISH_TIMEOUT")
	f.dur(&a.IdleTimeout, "IDLE_TIMEOUT", api.DefaultIdleTimeout, "how long an idle keep-alive connection is kept")
	f.int(&a.MaxHeaderBytes, "MAX_HEADER_BYTES", api.DefaultMaxHeaderBytes, "request line and headers limit in bytes (431 past it)")
	f.int(&a.MaxConnections, "MAX_CONNECTIONS", api.DefaultMaxConnections, "open connections of the public listener (503 past it)")
	f.int(&a.MaxUnsettledPerStudent, "MAX_UNSETTLED_PER_STUDENT", api.DefaultMaxUnsettledPerStudent, "a student's attempts not yet stored before POSTs answer 503")
	f.float(&a.AttemptRate, "ATTEMPT_RATE", api.DefaultAttemptRate, "attempt POSTs per second per student (429 past it, with ATTEMPT_BURST)")
	f.int(&a.AttemptBurst, "ATTEMPT_BURST", api.DefaultAttemptBurst, "attempt POSTs a student may send at once")
	f.float(&a.LoginRate, "LOGIN_RATE", api.DefaultLoginRate, "signups and logins per second per client address (429 past it, with LOGIN_BURST)")
	f.int(&a.LoginBurst, "LOGIN_BURST", api.DefaultLoginBurst, "signups and logins a client address may send at once")
	f.float(&a.TokenMissRate, "TOKEN_MISS_RATE", api.DefaultTokenMissRate, "lookups of unknown tokens per second per client address")
	f.int(&a.TokenMissBurst, "TOKEN_MISS_BURST", api.DefaultTokenMissBurst, "lookups of unknown tokens a client address may cause at once")
	f.list(&a.TrustedProxies, "TRUSTED_PROXIES", "addresses or CIDRs of proxies whose X-Forwarded-For is trusted; none by default")
	f.int(&a.RateLimitKeys, "RATE_LIMIT_KEYS", api.DefaultRateLimitKeys, "students and addresses each rate limiter remembers")
	f.int(&a.HashConcurrency, "HASH_CONCURRENCY", api.DefaultHashConcurrency(), "password hashes at once (each takes tens of MiB)")
	f.dur(&a.HashWait, "HASH_WAIT", api.DefaultHashWait, "longest a signup or login waits to hash before answering 503")
	f.dur(&a.TokenPurgeInterval, "TOKEN_PURGE_INTERVAL", api.DefaultTokenPurgeInterval, "how often expired tokens are deleted")
	f.int(&a.TokenCacheSize, "TOKEN_CACHE_SIZE", api.DefaultTokenCacheSize, "tokens the in-process cache holds")
}

func (f *flags) worker(c *config) {
	w := &c.Worker
	f.int(&w.BatchSize, "BATCH_SIZE", worker.DefaultBatchSize, "messages per worker batch")
	f.dur(&w.MaxWait, "BATCH_MAX_WAIT", worker.DefaultMaxWait, "how long a fetch waits to fill a batch")
	f.int(&c.ExamWorker.Finalizers, "EXAM_FINALIZERS", worker.DefaultFinalizers, "sessions a worker process finalizes at once when their timers fire")
	f.dur(&w.MaxBackoff, "MAX_BACKOFF", worker.DefaultMaxBackoff, "longest pause between retries of a failing database write")
	f.dur(&w.StatementTimeout, "WORKER_STATEMENT_TIMEOUT", worker.DefaultStatementTimeout, "PostgreSQL statement_timeout of batch writes; negative leaves the server's")
	f.dur(&w.MaxBatchHold, "MAX_BATCH_HOLD", worker.DefaultMaxBatchHold, "longest a batch is held (its write retried) before it is handed back for any worker")
	f.dur(&w.DeadLetterTimeout, "DEAD_LETTER_TIMEOUT", worker.DefaultDeadLetterTimeout, "longest a dead-letter write is retried; past it the poison stays unacknowledged")
}

// app is the process's wiring configuration: what c says, with the
// shutdown timeout given to both the API and the workers.
func (c *config) app(log *slog.Logger, withAPI, dev bool, workers int) app.Config {
	ac, wc := c.API, c.Worker
	ac.ShutdownTimeout, wc.ShutdownTimeout = c.ShutdownTimeout, c.ShutdownTimeout
	return app.Config{
		DatabaseURL: c.DatabaseURL, NATSURL: c.NATSURL, NATSAuth: c.NATSAuth, Stream: c.Stream,
		ApplyStream: dev, // dev owns its server; api and worker only check (quizstream stream apply)
		API:         withAPI, ListenAddr: c.ListenAddr, APIConfig: ac, Publish: c.Publish, Exams: c.Exams, ExamWorker: c.ExamWorker,
		Workers: workers, WorkerConfig: wc,
		MetricsAddr: c.MetricsAddr, Profiling: c.Profiling, Dev: dev, Logger: log,
	}
}
