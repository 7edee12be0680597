package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// config is every setting and flag of every command; each command
// registers the groups it uses.
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

	Stream     streams.StreamConfig
	API        api.Config
	Publish    eventlog.BatchConfig
	Exams      streams.ExamStreamConfig
	ExamWorker worker.ExamConfig
	Checks     streams.CheckStreamConfig
	Checker    app.CheckerConfig
	// CheckerLanguages is CHECKER_LANGUAGES, parsed into
	// Checker.Client.Languages when a checker starts.
	CheckerLanguages string
	Worker           worker.Config

	ShutdownTimeout time.Duration
	Profiling       bool

	DataDir  string
	NATSPort int
	Workers  int

	// The flags of one command, which no variable sets.
	JSON   bool          // dlq list, replay, stream status: print the result as JSON
	Force  bool          // stream apply
	DryRun bool          // content import
	Out    string        // content export
	All    bool          // dlq redrive
	Limit  int           // dlq list
	Replay replayOptions // replay
}

// A group registers settings: a setting is a flag that its environment
// variable sets too, the flag's name in upper case with underscores
// (-publish-timeout, $PUBLISH_TIMEOUT; ff's rule).
type group func(fs *flag.FlagSet, c *config)

// flags is the flag set of one command: the settings of its groups, and
// flags of its own that no variable sets.
type flags struct {
	fs             *flag.FlagSet
	env            map[string]bool // the flags that are settings
	summary        string          // the command's help, above its flags
	verb           string          // dlq, stream: the verb given
	stdout, stderr io.Writer
}

func newFlags(name, summary string, c *config, stdout, stderr io.Writer, groups ...group) *flags {
	f := &flags{fs: flag.NewFlagSet("quizstream "+name, flag.ContinueOnError), env: map[string]bool{},
		summary: summary, stdout: stdout, stderr: stderr}
	f.fs.SetOutput(io.Discard) // parse prints help and errors where they belong
	for _, g := range groups {
		g(f.fs, c)
	}
	f.fs.VisitAll(func(fl *flag.Flag) {
		f.env[fl.Name] = true
		fl.Usage += " ($" + envName(fl.Name) + ")"
	})
	return f
}

func envName(flagName string) string { return strings.ToUpper(strings.ReplaceAll(flagName, "-", "_")) }

// parse sets the settings from the environment and then every flag from
// args: a flag beats its variable, which beats the default. For -h or
// --help it prints the command's help to stdout and returns errHelp; a bad
// flag is errUsage, a bad variable an error that names it.
func (f *flags) parse(args []string) error {
	env := flag.NewFlagSet(f.fs.Name(), flag.ContinueOnError)
	env.SetOutput(io.Discard)
	f.fs.VisitAll(func(fl *flag.Flag) {
		if f.env[fl.Name] {
			env.Var(fl.Value, fl.Name, fl.Usage)
		}
	})
	envErr := ff.Parse(env, nil, ff.WithEnvVars())
	switch err := f.fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		f.help(f.stdout)
		return errHelp
	case err != nil:
		fmt.Fprintf(f.stderr, "%s: %v\n", f.fs.Name(), err)
		f.help(f.stderr)
		return errUsage
	case envErr != nil:
		return usageErr("bad environment: %v", envErr)
	}
	return nil
}

// help prints the command's summary and its flags.
func (f *flags) help(w io.Writer) {
	fmt.Fprint(w, f.summary)
	fmt.Fprintln(w, "\nflags (a setting's environment variable in parentheses; a flag beats its variable):")
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
	f.fs.SetOutput(io.Discard)
}

// logConfig logs the effective settings, secrets redacted.
func (f *flags) logConfig(log *slog.Logger, command string) {
	if len(f.env) == 0 {
		return
	}
	attrs := []any{slog.String("command", command)}
	f.fs.VisitAll(func(fl *flag.Flag) {
		if !f.env[fl.Name] {
			return
		}
		v := fl.Value.String()
		switch env := envName(fl.Name); {
		case env == "NATS_PASSWORD" || env == "NATS_TOKEN":
			if v != "" {
				v = "REDACTED"
			}
		case env == "DATABASE_URL" || env == "NATS_URL":
			v = app.RedactURL(v)
		}
		attrs = append(attrs, slog.String(strings.ToLower(envName(fl.Name)), v))
	})
	log.Info("quizstream: configuration", attrs...)
}

// list is a comma-separated list setting.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	*l = nil
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

func common(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
}

func database(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.DatabaseURL, "database-url", "postgres://localhost:5432/quizstream?sslmode=disable", "PostgreSQL connection URL")
}

// natsSettings binds the server's URL, described by usage, and the process's NATS
// identity: one of a user and password, a token, a creds file or an NKey
// seed file.
func natsSettings(usage string) group {
	return func(fs *flag.FlagSet, c *config) {
		a := &c.NATSAuth
		fs.StringVar(&c.NATSURL, "nats-url", "", usage)
		fs.StringVar(&a.User, "nats-user", "", "NATS user (with NATS_PASSWORD)")
		fs.StringVar(&a.Password, "nats-password", "", "NATS password of NATS_USER")
		fs.StringVar(&a.Token, "nats-token", "", "NATS authentication token")
		fs.StringVar(&a.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
		fs.StringVar(&a.NKeySeedFile, "nats-nkey-seed-file", "", "file holding the NATS user's NKey seed; in dev without NATS_URL, the embedded server's one user (default DATA_DIR/nats-dev.nk, created when missing)")
	}
}

var natsRequired = natsSettings("NATS server URL(s), comma-separated")

func metrics(addr string) group {
	return func(fs *flag.FlagSet, c *config) {
		fs.StringVar(&c.MetricsAddr, "metrics-addr", addr, "operations listener for /metrics, /livez and /readyz; off disables it")
		fs.BoolVar(&c.Profiling, "pprof", false, "serve Go's profiles under /debug/pprof/ on the operations listener")
	}
}

func stream(fs *flag.FlagSet, c *config) {
	s := &c.Stream
	fs.IntVar(&s.Replicas, "stream-replicas", streams.DefaultReplicas, "replicas of the attempts stream: 1 (server must sync always) or 3")
	fs.DurationVar(&s.Duplicates, "stream-duplicates", streams.DefaultDuplicates, "duplicate window of the attempts stream")
	fs.DurationVar(&s.MaxAge, "stream-max-age", streams.DefaultMaxAge, "how long the attempts stream keeps events")
	fs.Int64Var(&s.MaxBytes, "stream-max-bytes", streams.DefaultMaxBytes, "how many bytes the attempts stream keeps; past it publishes fail")
	fs.Int64Var(&s.MaxMsgs, "stream-max-msgs", streams.DefaultMaxMsgs, "how many events the attempts stream keeps (each a subject in the server's memory); past it publishes fail")
	fs.DurationVar(&s.AckWait, "ack-wait", streams.DefaultAckWait, "how long a worker may hold a message before it is redelivered")
	fs.Int64Var(&c.Exams.MaxBytes, "exams-max-bytes", streams.DefaultMaxBytes, "how many bytes the exams stream keeps; past it starts, saves and submits answer 503")
	fs.Int64Var(&c.Exams.TimerMaxBytes, "exam-timers-max-bytes", streams.DefaultExamTimerMaxBytes, "how many bytes the exam timers stream keeps")
	fs.DurationVar(&c.Exams.MaxAge, "exams-max-age", streams.DefaultMaxAge, "how long exam events and timers are kept; above the longest time limit plus grace")
	fs.Int64Var(&c.Checks.MaxBytes, "checks-max-bytes", streams.DefaultCheckMaxBytes, "how many bytes the code checks stream keeps; past it check requests answer 503")
	fs.DurationVar(&c.Checks.MaxAge, "checks-max-age", streams.DefaultMaxAge, "how long code check events are kept; a request must be checked within it")
	fs.DurationVar(&c.Checks.CheckerAckWait, "checker-ack-wait", streams.DefaultCheckerAckWait, "how long a checker may hold a check request unheard before it is redelivered")
	fs.Int64Var(&s.ReadModelMaxBytes, "read-model-max-bytes", streams.DefaultReadModelMaxBytes, "bytes the student read model's bucket keeps; past it the least recently written students drop out (read from PostgreSQL)")
	fs.DurationVar(&s.ReadModelTTL, "read-model-ttl", streams.DefaultReadModelTTL, "how long a student's read-model value lives unwritten (a term)")
	fs.BoolVar(&s.ReadModel, "read-model", true, "API instances read students from the read model, which workers fold into on a consumer of their own (docs/architecture.md, \"Read model\"); off, both use PostgreSQL alone and stream apply declares no consumer for it")
	fs.IntVar(&s.MaxAckPending, "max-ack-pending", streams.DefaultMaxAckPending, "unacknowledged messages across all workers (>= workers x batch size)")
}

func shutdown(fs *flag.FlagSet, c *config) {
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", worker.DefaultShutdownTimeout, "how long shutdown may take to finish the work in hand")
}

func apiSettings(fs *flag.FlagSet, c *config) {
	a := &c.API
	fs.StringVar(&c.ListenAddr, "listen-addr", "127.0.0.1:8080", "public HTTP listen address")
	fs.DurationVar(&a.PublishTimeout, "publish-timeout", api.DefaultPublishTimeout, "how long an attempt POST waits for the stream before answering 503")
	fs.DurationVar(&a.TokenCacheTTL, "token-cache-ttl", api.DefaultTokenCacheTTL, "how long a token is trusted without asking PostgreSQL (bound on cross-instance logout)")
	fs.DurationVar(&a.TokenLifetime, "token-lifetime", api.DefaultTokenLifetime, "how long a login token lives")
	fs.DurationVar(&a.ContentReload, "content-reload", api.DefaultContentReload, "how often content is reloaded from PostgreSQL; negative disables")
	fs.DurationVar(&a.ContentMaxAge, "content-max-age", api.DefaultContentMaxAge, "Cache-Control max-age of content responses")
	fs.Int64Var(&a.BodyLimit, "body-limit", api.DefaultBodyLimit, "request body limit in bytes")
	fs.DurationVar(&a.DrainDelay, "drain-delay", 0, "at shutdown, how long /readyz fails before the listener closes")
	limits(fs, c)
	fs.DurationVar(&a.Exams.Grace, "exam-grace", api.DefaultExamGrace, "grace_s of timed quizzes that set none: saves and submits that reach the API this long after the deadline count")
	fs.DurationVar(&a.Exams.Settle, "exam-settle", api.DefaultExamSettle, "how long after deadline + grace a session's timer fires")
	fs.IntVar(&a.Exams.SessionCacheSize, "exam-session-cache", api.DefaultSessionCacheSize, "exam sessions an API instance keeps in memory")
	fs.DurationVar(&c.Publish.Window, "publish-batch-window", eventlog.DefaultBatchWindow, "longest an attempt waits for others to join its atomic batch")
	fs.IntVar(&c.Publish.MaxMessages, "publish-batch-max", eventlog.DefaultBatchMaxMessages, "most attempts in one atomic batch (at most 1000)")
	fs.StringVar(&c.AccessLogLevel, "access-log-level", "debug", "level of the access log's lines, one a request: debug, info, warn, error or off")
	fs.Float64Var(&a.AccessLogSample, "access-log-sample", 1, "share of requests the access log logs, from 0 to 1")
}

// limits binds the API's protections against hostile and careless
// traffic (docs/security.md); a negative rate or cap turns it off.
func limits(fs *flag.FlagSet, c *config) {
	a := &c.API
	fs.DurationVar(&a.ReadTimeout, "read-timeout", api.DefaultReadTimeout, "longest a request, headers and body, may take to arrive (408 past it)")
	fs.DurationVar(&a.WriteTimeout, "write-timeout", api.DefaultWriteTimeout, "longest a request may take to be answered; above PUBLISH_TIMEOUT")
	fs.DurationVar(&a.IdleTimeout, "idle-timeout", api.DefaultIdleTimeout, "how long an idle keep-alive connection is kept")
	fs.IntVar(&a.MaxHeaderBytes, "max-header-bytes", api.DefaultMaxHeaderBytes, "request line and headers limit in bytes (431 past it)")
	fs.IntVar(&a.MaxConnections, "max-connections", api.DefaultMaxConnections, "open connections of the public listener (503 past it); about 20 KiB of memory each")
	fs.IntVar(&a.MaxConnsPerAddress, "max-conns-per-address", api.DefaultMaxConnsPerAddress, "open connections of one client address (503 past it); trusted proxies are not capped")
	fs.IntVar(&a.MaxPendingPerAddress, "max-pending-per-address", api.DefaultMaxPendingPerAddress, "connections of one client address not yet answered a request (503 past it)")
	fs.IntVar(&a.MaxUnsettledPerStudent, "max-unsettled-per-student", api.DefaultMaxUnsettledPerStudent, "a student's attempts not yet stored before POSTs answer 503")
	fs.Float64Var(&a.AttemptRate, "attempt-rate", api.DefaultAttemptRate, "attempt POSTs per second per student (429 past it, with ATTEMPT_BURST)")
	fs.IntVar(&a.AttemptBurst, "attempt-burst", api.DefaultAttemptBurst, "attempt POSTs a student may send at once")
	fs.Float64Var(&a.SignupRate, "signup-rate", api.DefaultSignupRate, "signups per second per client address after SIGNUP_BURST (429 past it)")
	fs.IntVar(&a.SignupBurst, "signup-burst", api.DefaultSignupBurst, "signups a client address may send at once: a hall behind one NAT")
	fs.Float64Var(&a.LoginFailureRate, "login-failure-rate", api.DefaultLoginFailureRate, "failed logins per second per client address, over all accounts, after LOGIN_FAILURE_BURST (429 past it)")
	fs.IntVar(&a.LoginFailureBurst, "login-failure-burst", api.DefaultLoginFailureBurst, "failed logins a client address may have at once; successful logins spend none")
	fs.Float64Var(&a.AccountFailureRate, "account-failure-rate", api.DefaultAccountFailureRate, "failed logins per second per account, from all addresses, after ACCOUNT_FAILURE_BURST")
	fs.IntVar(&a.AccountFailureBurst, "account-failure-burst", api.DefaultAccountFailureBurst, "failed logins an account may have at once; past it only addresses that failed on it lately are refused")
	fs.Float64Var(&a.PairFailureRate, "pair-failure-rate", api.DefaultPairFailureRate, "failed logins per second per (account, client address) after PAIR_FAILURE_BURST (429 past it)")
	fs.IntVar(&a.PairFailureBurst, "pair-failure-burst", api.DefaultPairFailureBurst, "failed logins one address may have on one account at once")
	fs.Float64Var(&a.TokenMissRate, "token-miss-rate", api.DefaultTokenMissRate, "lookups of unknown tokens per second per client address")
	fs.IntVar(&a.TokenMissBurst, "token-miss-burst", api.DefaultTokenMissBurst, "lookups of unknown tokens a client address may cause at once")
	fs.Var((*list)(&a.TrustedProxies), "trusted-proxies", "addresses or CIDRs of proxies whose X-Forwarded-For is trusted, comma-separated; none by default")
	fs.IntVar(&a.RateLimitKeys, "rate-limit-keys", api.DefaultRateLimitKeys, "students and addresses each rate limiter remembers")
	fs.IntVar(&a.HashConcurrency, "hash-concurrency", api.DefaultHashConcurrency(), "password hashes at once (each takes tens of MiB)")
	fs.DurationVar(&a.HashWait, "hash-wait", api.DefaultHashWait, "longest a signup or login waits to hash before answering 503")
	fs.DurationVar(&a.TokenPurgeInterval, "token-purge-interval", api.DefaultTokenPurgeInterval, "how often expired tokens are deleted")
	fs.IntVar(&a.TokenCacheSize, "token-cache-size", api.DefaultTokenCacheSize, "tokens the in-process cache holds")
}

func workerSettings(fs *flag.FlagSet, c *config) {
	w := &c.Worker
	fs.IntVar(&c.Workers, "workers", worker.DefaultWriters, "concurrent batch writers in this process")
	fs.IntVar(&w.BatchSize, "batch-size", worker.DefaultBatchSize, "messages per worker batch")
	fs.DurationVar(&w.MaxWait, "batch-max-wait", worker.DefaultMaxWait, "how long a fetch waits to fill a batch")
	fs.IntVar(&c.ExamWorker.Finalizers, "exam-finalizers", worker.DefaultFinalizers, "sessions a worker process finalizes at once when their timers fire")
	fs.DurationVar(&w.MaxBackoff, "max-backoff", worker.DefaultMaxBackoff, "longest pause between retries of a failing database write")
	fs.DurationVar(&w.StatementTimeout, "worker-statement-timeout", worker.DefaultStatementTimeout, "PostgreSQL statement_timeout of batch writes; negative leaves the server's")
	fs.DurationVar(&w.MaxBatchHold, "max-batch-hold", worker.DefaultMaxBatchHold, "longest a batch is held (its write retried) before it is handed back for any worker")
	fs.DurationVar(&w.DeadLetterTimeout, "dead-letter-timeout", worker.DefaultDeadLetterTimeout, "longest a dead-letter write is retried; past it the poison stays unacknowledged")
}

func devSettings(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.DataDir, "data-dir", ".quizstream", "folder of the embedded NATS server's file store")
	fs.IntVar(&c.NATSPort, "nats-port", 4223, "port of the embedded NATS server (on 127.0.0.1; 4223 leaves 4222 to a system NATS); -1 picks a free one")
}

func replaySettings(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.Replay.cfg.BatchSize, "batch-size", replay.DefaultBatchSize, "events read and written per batch")
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
		Checks: c.Checks, Checker: c.Checker,
		Workers: workers, WorkerConfig: wc,
		MetricsAddr: c.MetricsAddr, Profiling: c.Profiling, Dev: dev, Logger: log,
	}
}
