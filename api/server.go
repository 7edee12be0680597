// Package api is quizstream's HTTP surface (Echo v4): accounts, content
// from an in-memory snapshot, the attempt POST that publishes to the event
// log, and the student's reads from PostgreSQL.
// The contract it serves is summarized in docs/architecture.md ("HTTP
// contract"); the invariants it keeps in docs/invariants.md.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/health"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// EventLog is everything the API needs of the event log, and the API
// finds no other capability on it: a missing method fails at wiring (the
// compiler, in app), never turns a feature off at run time.
type EventLog interface {
	// PublishAttempt returns once the log durably holds the attempt (or
	// already held one with its id); an error means the outcome is unknown.
	PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (eventlog.Published, error)
	// AckFloor returns the sequence up to which every event is settled
	// (stored, or set aside as poison).
	AckFloor(ctx context.Context) (uint64, error)
	// Attempt returns one attempt's event, or eventlog.ErrNotInLog.
	Attempt(ctx context.Context, student, attempt uuid.UUID) (eventlog.Published, error)
	// StudentAttempts returns up to max of a student's events above a sequence.
	StudentAttempts(ctx context.Context, student uuid.UUID, after uint64, max int) ([]eventlog.Published, error)
	// CountStudentAttempts counts up to max of them, without copying them:
	// the unsettled-attempts limit.
	CountStudentAttempts(ctx context.Context, student uuid.UUID, after uint64, max int) (int, error)
	// Capacity returns what the stream holds against its limits: the
	// readiness check that takes a full stream's instance out of rotation.
	Capacity(ctx context.Context) (streams.Capacity, error)
	// Trimmed reports whether the stream has removed events, so that a
	// late retry's original may be gone from it and only PostgreSQL knows it.
	Trimmed(ctx context.Context) bool
	// Ping reports whether the log answers.
	Ping(ctx context.Context) error
}

// ContentCopy is the copy of the content kept outside PostgreSQL (in
// NATS: streams.ContentSnapshots), from which an instance starts while
// PostgreSQL is down.
type ContentCopy interface {
	// Load returns the copy and its version, or an error.
	Load(ctx context.Context) (data []byte, version string, err error)
	// Save keeps data as the copy, unless it is the copy
	// already; it reports whether it wrote.
	Save(ctx context.Context, data []byte) (bool, error)
}

// Notices is how API instances tell each other to drop what they cache.
type Notices interface {
	// Notify tells every instance; an error means some may not have heard.
	Notify(subject string, payload []byte) error
	// Subscribe calls handle for every notice on subject until unsubscribed.
	Subscribe(subject string, handle func(payload []byte)) (unsubscribe func() error, err error)
}

// Defaults of Config, named once: the binary's settings use them too.
const (
	DefaultBodyLimit       = 64 << 10
	DefaultTokenLifetime   = 30 * 24 * time.Hour
	DefaultTokenCacheTTL   = 30 * time.Second
	DefaultContentMaxAge   = time.Minute
	DefaultContentReload   = time.Minute
	DefaultPublishTimeout  = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second

	// Limits (docs/security.md).
	DefaultReadTimeout            = 10 * time.Second
	DefaultWriteTimeout           = 15 * time.Second
	DefaultIdleTimeout            = 60 * time.Second
	DefaultMaxHeaderBytes         = 16 << 10
	DefaultMaxConnections         = 16384
	DefaultMaxConnsPerAddress     = 8192
	DefaultMaxPendingPerAddress   = 2048
	DefaultMaxUnsettledPerStudent = 200
	DefaultAttemptRate            = 2.0
	DefaultAttemptBurst           = 120
	DefaultSignupRate             = 1.0
	DefaultSignupBurst            = 2000
	DefaultLoginFailureRate       = 1.0
	DefaultLoginFailureBurst      = 1000
	DefaultAccountFailureRate     = 1.0 / 60
	DefaultAccountFailureBurst    = 20
	DefaultPairFailureRate        = 1.0 / 60
	DefaultPairFailureBurst       = 10
	DefaultTokenMissRate          = 10.0
	DefaultTokenMissBurst         = 100
	DefaultRateLimitKeys          = 100000
	DefaultHashWait               = 2 * time.Second
	DefaultTokenPurgeInterval     = time.Hour
	DefaultTokenCacheSize         = 100000
)

// DefaultHashConcurrency is half the CPUs (at least one): argon2id takes
// a whole core per hash, and the other half is left to everything else.
func DefaultHashConcurrency() int { return max(1, runtime.NumCPU()/2) }

// Config configures a Server.
type Config struct {
	// Store and Events are required.
	Store  *store.Store
	Events EventLog
	// ContentCopy, when set, is where content is copied to and loaded from
	// when PostgreSQL is down at start. Defaults to none: such an instance
	// cannot start without PostgreSQL.
	ContentCopy ContentCopy
	// ReadModel, when set, answers student reads (progress, the first
	// page of attempts, an attempt of that page) with one direct get;
	// what it cannot answer is read from PostgreSQL and counted as a
	// fallback (api/readmodel.go). Defaults to none: every such read is a
	// fallback.
	ReadModel ReadModel
	// Notices, when set, carries content-changed and token-revoked notices
	// between instances, so that they act at once rather than after
	// ContentReload or TokenCacheTTL. Defaults to none.
	Notices Notices
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the API's metrics. Defaults to none.
	Registerer prometheus.Registerer
	// BodyLimit caps request bodies, in bytes. Defaults to 64 KiB.
	BodyLimit int64
	// TokenLifetime is how long a token lives after login. Defaults to 30 days.
	TokenLifetime time.Duration
	// TokenCacheSize bounds the in-process token cache, and apart from it
	// the caches of unknown and of revoked tokens. Defaults to 100000.
	TokenCacheSize int
	// TokenCacheTTL bounds how long a cached token is trusted without asking
	// PostgreSQL: a token revoked on another instance stops working here
	// within it (unless PostgreSQL is unreachable then). A token PostgreSQL
	// does not know is answered 401 without asking again for as long.
	// Defaults to 30s.
	TokenCacheTTL time.Duration
	// ContentMaxAge is the Cache-Control max-age of content. Defaults to 60s.
	ContentMaxAge time.Duration
	// ContentReload is how often the content snapshot is reloaded; negative
	// disables it. Defaults to 1 minute.
	ContentReload time.Duration
	// PublishTimeout bounds waiting for the event log's acknowledgement;
	// past it the client gets 503. Defaults to 5s.
	PublishTimeout time.Duration
	// AckFloorMaxAge is how old an ack floor reading may be when a student
	// read uses it. Defaults to 250ms.
	AckFloorMaxAge time.Duration
	// RetryStatusTimeout bounds asking PostgreSQL for the status of an
	// attempt a retried POST found in the log; past it the ack floor
	// decides. Defaults to 100ms.
	RetryStatusTimeout time.Duration
	// TokenCheckTimeout bounds asking PostgreSQL about a cached token whose
	// TTL ran out; past it the cached session is used. Defaults to 300ms.
	TokenCheckTimeout time.Duration
	// RetryAfterSeconds is sent with every 503. Defaults to 1.
	RetryAfterSeconds int
	// HashConcurrency caps concurrent password hashes (signup, login): each
	// takes a core and 19 MiB. Defaults to half the CPUs, at least 1.
	HashConcurrency int
	// HashWait bounds how long a signup or login waits for a hashing slot;
	// past it the client gets 503 with Retry-After. Defaults to 2s.
	HashWait time.Duration
	// DrainDelay is how long /readyz fails before the listener closes at
	// shutdown, so that load balancers stop sending first. Defaults to 0.
	DrainDelay time.Duration
	// ShutdownTimeout bounds finishing in-flight requests at shutdown. Defaults to 10s.
	ShutdownTimeout time.Duration

	// ReadTimeout bounds reading one request, headers and body; a body
	// that has not arrived by then is answered 408. Defaults to 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its answer. Handlers get a deadline a little before it, so that a
	// request that runs out of time is answered 503 rather than cut off.
	// It must exceed PublishTimeout. Defaults to 15s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle for this long.
	// Defaults to 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's line and headers (net/http allows 4
	// KiB over it); above it the answer is 431. Defaults to 16 KiB.
	MaxHeaderBytes int
	// MaxConnections caps the public listener's open connections; one over
	// it is answered 503 with Retry-After and closed. Negative means no
	// cap. Defaults to 16384 (about 20 KiB of memory each when idle:
	// BenchmarkConnectionMemory).
	MaxConnections int
	// MaxConnsPerAddress caps one client address's open connections, and
	// MaxPendingPerAddress those of them that have not yet been answered a
	// request (a slowloris holds only those); one over either is answered
	// 503 with Retry-After and closed. Connections from TrustedProxies are
	// not capped per address. Negative means no cap. Default to 8192 (a
	// hall of 2,000 browsers with 4 connections each behind one NAT) and
	// 2048.
	MaxConnsPerAddress   int
	MaxPendingPerAddress int
	// MaxUnsettledPerStudent caps a student's attempts in the event log
	// that no worker has settled yet; an attempt POST over it is answered
	// 503 with Retry-After before anything is published. Negative means no
	// cap. Defaults to 200.
	MaxUnsettledPerStudent int
	// AttemptRate (per second) and AttemptBurst are each student's token
	// bucket for attempt POSTs; past it the answer is 429 with Retry-After.
	// A negative rate means no limit. Default to 2/s and 120.
	AttemptRate  float64
	AttemptBurst int
	// SignupRate (per second) and SignupBurst are each client address's
	// token bucket for signups; past it, 429 with Retry-After. The default
	// admits a hall of 2,000 behind one address at once and 1 a second
	// after it. A negative rate means no limit. Default to 1/s and 2000.
	SignupRate  float64
	SignupBurst int
	// LoginFailureRate (per second) and LoginFailureBurst are each client
	// address's budget of failed logins (wrong email or password), over
	// all accounts; a successful login spends none. Once it is spent every
	// login from the address is answered 429 with Retry-After. A negative
	// rate means no limit. Default to 1/s and 1000.
	LoginFailureRate  float64
	LoginFailureBurst int
	// AccountFailureRate and AccountFailureBurst are each account's budget
	// of failed logins from all addresses together. Once it is spent, an
	// address that has failed on the account lately (its pair budget has
	// not refilled since) is answered 429; one that has not still gets its
	// try, so that nobody can lock an owner out. It needs the pair budget. A negative rate means no limit. Default to 1/min and 20.
	AccountFailureRate  float64
	AccountFailureBurst int
	// PairFailureRate and PairFailureBurst are the budget of failed logins
	// of each (account, client address) pair; past it logins to the
	// account from the address are answered 429. A negative rate means no
	// limit. Default to 1/min and 10.
	PairFailureRate  float64
	PairFailureBurst int
	// TokenMissRate (per second) and TokenMissBurst are each client
	// address's token bucket for bearer tokens that PostgreSQL had to be
	// asked about and did not know; past it a token the instance has not
	// seen is answered 429 with Retry-After without asking. A negative rate
	// means no limit. Default to 10/s and 100.
	TokenMissRate  float64
	TokenMissBurst int
	// TrustedProxies lists the addresses (an IP or a CIDR range) of the
	// proxies whose X-Forwarded-For is believed: the client address is the
	// nearest address in it that is not a trusted proxy. Defaults to none:
	// the client address is the peer's.
	TrustedProxies []string
	// RateLimitKeys bounds how many keys (students, client addresses,
	// accounts, pairs) each rate limit remembers: keys whose bucket is
	// full again are dropped every minute, and past the bound the least
	// recently seen are forgotten first. Defaults to 100000.
	RateLimitKeys int
	// TokenPurgeInterval is how often expired tokens are deleted from
	// PostgreSQL; negative disables it. Defaults to 1 hour.
	TokenPurgeInterval time.Duration

	// AccessLogLevel is the level of the access log's lines, one a
	// request (api/accesslog.go); AccessLogOff turns it off. Whether the
	// Logger enables it is asked once, by NewServer. Defaults to
	// slog.LevelDebug: logged when the logger logs debug.
	AccessLogLevel slog.Leveler
	// AccessLogSample is the share of requests the access log logs, from 0
	// to 1. Negative logs none. Defaults to 1, every request.
	AccessLogSample float64

	// Exams configures timed exams (api/sessions.go): the exams log, the
	// grace, the clock. Its zero value answers the session endpoints 503.
	Exams ExamConfig
	// Checks is the code-checks event log (api/checks.go); without it the
	// check endpoints answer 503.
	Checks CheckLog

	// cheapHashes makes new password hashes argon2id at its lowest cost:
	// for tests of something other than hashing (export_test.go).
	cheapHashes bool
}

func (c *Config) defaults() error {
	if c.Store == nil || c.Events == nil {
		return errors.New("api: Config.Store and Config.Events are required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.TokenLifetime <= 0 {
		c.TokenLifetime = DefaultTokenLifetime
	}
	if c.TokenCacheSize <= 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.TokenCacheTTL <= 0 {
		c.TokenCacheTTL = DefaultTokenCacheTTL
	}
	if c.ContentMaxAge <= 0 {
		c.ContentMaxAge = DefaultContentMaxAge
	}
	if c.ContentReload == 0 {
		c.ContentReload = DefaultContentReload
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.AckFloorMaxAge <= 0 {
		c.AckFloorMaxAge = 250 * time.Millisecond
	}
	if c.RetryStatusTimeout <= 0 {
		c.RetryStatusTimeout = 100 * time.Millisecond
	}
	if c.TokenCheckTimeout <= 0 {
		c.TokenCheckTimeout = 300 * time.Millisecond
	}
	if c.RetryAfterSeconds <= 0 {
		c.RetryAfterSeconds = 1
	}
	if c.HashConcurrency <= 0 {
		c.HashConcurrency = DefaultHashConcurrency()
	}
	if c.HashWait <= 0 {
		c.HashWait = DefaultHashWait
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.AccessLogLevel == nil {
		c.AccessLogLevel = slog.LevelDebug
	}
	switch {
	case c.AccessLogSample > 1:
		return fmt.Errorf("api: Config.AccessLogSample %v is above 1", c.AccessLogSample)
	case c.AccessLogSample == 0:
		c.AccessLogSample = 1
	case c.AccessLogSample < 0:
		c.AccessLogSample = 0
	}
	return c.limitDefaults()
}

// Server is one API instance.
type Server struct {
	cfg     Config
	echo    *echo.Echo
	store   *store.Store
	events  EventLog
	log     *slog.Logger
	metrics *metrics
	content atomic.Pointer[snapshot]
	tokens  *tokenCache
	hasher  *hasher
	limits  limits
	// refusals logs what the limits refuse (api/refusals.go).
	refusals refusals
	// tokenLookedUp, when set (by tests), runs between reading a token's
	// session from PostgreSQL and caching it.
	tokenLookedUp func()
	dummyHash     string
	cacheControl  []string // the header's value for content; never modified
	ready         *health.Readiness
	floor         floorCache // the attempts consumer's
	checkFloor    floorCache // the check writers' consumer's
	model         ReadModel
	// published is the highest stream sequence this instance's attempt
	// POSTs were answered with: the position its own limit checks wait for.
	published atomic.Uint64
	// reload asks the content reloader for a reload now; capacity 1, so
	// notices arriving together cost one reload.
	reload chan struct{}
}

// NewServer builds a Server and loads its content snapshot; it fails when
// the snapshot cannot be loaded or a Config field is bad.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:          cfg,
		store:        cfg.Store,
		events:       cfg.Events,
		model:        cfg.ReadModel,
		log:          cfg.Logger,
		metrics:      m,
		hasher:       newHasher(cfg.HashConcurrency),
		reload:       make(chan struct{}, 1),
		cacheControl: cacheControl(cfg.ContentMaxAge),
	}
	s.hasher.wait, s.hasher.metrics = cfg.HashWait, m.hashes
	if cfg.cheapHashes {
		s.hasher.memKiB, s.hasher.passes = 64, 1
	}
	if s.tokens, err = newTokenCache(cfg.TokenCacheSize, cfg.TokenCacheTTL, max(time.Minute, 2*cfg.WriteTimeout)); err != nil {
		return nil, err
	}
	if s.limits, err = newLimits(cfg); err != nil {
		return nil, err
	}
	if s.dummyHash, err = s.hasher.hash(ctx, "not a password of anyone's"); err != nil {
		return nil, err
	}
	if _, err := s.loadContent(ctx); err != nil {
		return nil, fmt.Errorf("api: load content: %w", err)
	}
	s.ready = s.readiness()
	s.echo = s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the whole public surface.
func (s *Server) Handler() http.Handler { return s.echo }

// subscribe listens to other instances' notices until the returned
// function is called; that function logs a failure to unsubscribe, since
// at shutdown there is nothing else to do with it.
func (s *Server) subscribe() (func(), error) {
	unContent, err := s.cfg.Notices.Subscribe(events.SubjectContentChanged, func([]byte) {
		select {
		case s.reload <- struct{}{}:
		default: // a reload is pending already
		}
	})
	if err != nil {
		return nil, err
	}
	unTokens, err := s.cfg.Notices.Subscribe(events.SubjectTokenRevoked, func(hash []byte) {
		s.tokens.revoke(string(hash), time.Now())
	})
	if err != nil {
		// The subscription that failed is the error to return; the one
		// made is only undone.
		_ = unContent()
		return nil, err
	}
	return func() {
		if err := errors.Join(unContent(), unTokens()); err != nil {
			s.log.Warn("api: unsubscribe from notices", "err", err)
		}
	}, nil
}

// Serve answers HTTP on ln until ctx is cancelled, then drains: /readyz
// fails at once, no new connection is accepted, and in-flight requests
// (publishes included) finish within ShutdownTimeout. It returns nil after
// a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	lim := s.listener(ln)
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: s.cfg.ReadTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState:         lim.connState,
	}
	var wg sync.WaitGroup
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stop(); wg.Wait(); lim.wait() }()
	wg.Add(3)
	go func() { defer wg.Done(); s.reloadContent(bg) }()
	go func() { defer wg.Done(); s.purgeTokens(bg) }()
	go func() { defer wg.Done(); s.sweepLimits(bg) }()
	if s.cfg.Notices != nil {
		unsubscribe, err := s.subscribe()
		if err != nil {
			return err
		}
		defer unsubscribe()
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lim) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	s.ready.Drain()
	s.log.Info("api: draining", "drain_delay", s.cfg.DrainDelay)
	time.Sleep(s.cfg.DrainDelay) // /readyz fails meanwhile; requests are still served
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	<-errc
	s.log.Info("api: stopped")
	return nil
}
