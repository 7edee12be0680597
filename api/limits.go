package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"
	"github.com/quizstream/quizstream/tail"
	"golang.org/x/time/rate"
)

// This file holds the API's per-instance limits (docs/security.md): token
// buckets per student and per client address, the cap on a student's
// unsettled attempts, and the handlers' deadline. The listener's limits
// (connections, framework errors) are in listener.go.

// limitDefaults fills and checks the limits' fields of c.
func (c *Config) limitDefaults() error {
	dur := func(p *time.Duration, def time.Duration) {
		if *p <= 0 {
			*p = def
		}
	}
	dur(&c.ReadTimeout, DefaultReadTimeout)
	dur(&c.WriteTimeout, DefaultWriteTimeout)
	dur(&c.IdleTimeout, DefaultIdleTimeout)
	dur(&c.TokenPurgeInterval, DefaultTokenPurgeInterval)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	for _, f := range []struct {
		p   *int
		def int
	}{
		{&c.MaxConnections, DefaultMaxConnections},
		{&c.MaxConnsPerAddress, DefaultMaxConnsPerAddress},
		{&c.MaxPendingPerAddress, DefaultMaxPendingPerAddress},
	} {
		if *f.p == 0 {
			*f.p = f.def
		}
	}
	if c.MaxUnsettledPerStudent == 0 {
		c.MaxUnsettledPerStudent = DefaultMaxUnsettledPerStudent
	}
	if c.RateLimitKeys <= 0 {
		c.RateLimitKeys = DefaultRateLimitKeys
	}
	bucket := func(r *float64, b *int, defRate float64, defBurst int) {
		if *r == 0 {
			*r = defRate
		}
		if *b <= 0 {
			*b = defBurst
		}
	}
	bucket(&c.AttemptRate, &c.AttemptBurst, DefaultAttemptRate, DefaultAttemptBurst)
	bucket(&c.SignupRate, &c.SignupBurst, DefaultSignupRate, DefaultSignupBurst)
	bucket(&c.LoginFailureRate, &c.LoginFailureBurst, DefaultLoginFailureRate, DefaultLoginFailureBurst)
	bucket(&c.AccountFailureRate, &c.AccountFailureBurst, DefaultAccountFailureRate, DefaultAccountFailureBurst)
	bucket(&c.PairFailureRate, &c.PairFailureBurst, DefaultPairFailureRate, DefaultPairFailureBurst)
	bucket(&c.TokenMissRate, &c.TokenMissBurst, DefaultTokenMissRate, DefaultTokenMissBurst)
	if c.WriteTimeout <= c.PublishTimeout {
		return fmt.Errorf("api: Config.WriteTimeout (%s) must exceed Config.PublishTimeout (%s)", c.WriteTimeout, c.PublishTimeout)
	}
	if _, err := trustedRanges(c.TrustedProxies); err != nil {
		return err
	}
	return nil
}

// trustedRanges parses Config.TrustedProxies: each an IP or a CIDR range.
func trustedRanges(proxies []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, p := range proxies {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			ip := net.ParseIP(p)
			if ip == nil {
				return nil, fmt.Errorf("api: Config.TrustedProxies: %q is neither an IP nor a CIDR range", p)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("api: Config.TrustedProxies: %q is neither an IP nor a CIDR range", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// ipExtractor is how the client address is found: the peer's, unless
// trusted proxies are configured; then the nearest address of
// X-Forwarded-For that is not one of them (a client can prepend what it
// likes to the header, but not change what the proxies appended).
func ipExtractor(proxies []string) echo.IPExtractor {
	ranges, _ := trustedRanges(proxies) // checked by Config.defaults
	if len(ranges) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, r := range ranges {
		opts = append(opts, echo.TrustIPRange(r))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// clientKey is the key of a client address's buckets: the address, or for
// IPv6 its /64, which one subscriber usually holds whole.
func clientKey(c echo.Context) string {
	addr := c.RealIP()
	ip := net.ParseIP(addr)
	if ip == nil {
		return addr
	}
	return ipKey(ip)
}

// ipKey is the key of an IP address: the address, or for IPv6 its /64.
func ipKey(ip net.IP) string {
	if ip.To4() != nil {
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// buckets is one token bucket per key (a student, a client address), the
// least recently seen keys forgotten first beyond a bound: forgetting one
// only refills its bucket. A nil *buckets allows everything.
type buckets struct {
	limit rate.Limit
	burst int
	keys  *lru.Cache[string, *rate.Limiter]
}

func newBuckets(perSecond float64, burst, keys int) (*buckets, error) {
	if perSecond < 0 {
		return nil, nil
	}
	c, err := lru.New[string, *rate.Limiter](keys)
	if err != nil {
		return nil, err
	}
	return &buckets{limit: rate.Limit(perSecond), burst: burst, keys: c}, nil
}

func (b *buckets) bucket(key string) *rate.Limiter {
	if l, ok := b.keys.Get(key); ok {
		return l
	}
	l := rate.NewLimiter(b.limit, b.burst)
	if prev, ok, _ := b.keys.PeekOrAdd(key, l); ok {
		return prev
	}
	return l
}

// take takes a token from key's bucket now. When there is none it takes
// nothing and returns how long until there is one.
func (b *buckets) take(key string) (ok bool, wait time.Duration) {
	_, ok, wait = b.reserve(key)
	return ok, wait
}

// reserve takes a token from key's bucket now, which the caller may give
// back with the reservation's Cancel; when there is none it takes nothing
// and returns how long until there is one.
func (b *buckets) reserve(key string) (*rate.Reservation, bool, time.Duration) {
	now := time.Now()
	r := b.bucket(key).ReserveN(now, 1)
	if !r.OK() {
		return nil, false, time.Hour // a burst below 1: never
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, false, wait
	}
	return r, true, 0
}

// peek reports whether key's bucket holds a token now, without taking
// one or remembering a new key, how long until it does when it does not,
// and whether the key's bucket is full (or forgotten: the same). A key
// remembered counts as seen (Get), so that a key being refused is not the
// first forgotten.
func (b *buckets) peek(key string) (ok bool, wait time.Duration, full bool) {
	l, seen := b.keys.Get(key)
	if !seen {
		return true, 0, true
	}
	tokens := l.TokensAt(time.Now())
	full = tokens >= float64(b.burst) // refilled since the last token taken
	if tokens >= 1 {
		return true, 0, full
	}
	if b.limit <= 0 {
		return false, time.Hour, full
	}
	return false, time.Duration((1 - tokens) / float64(b.limit) * float64(time.Second)), full
}

// charge takes a token from key's bucket, into debt when there is none
// (a debt of at most a burst): charged after the fact, a failure that
// raced others past peek still costs its token.
func (b *buckets) charge(key string) {
	l, now := b.bucket(key), time.Now()
	if l.TokensAt(now)-1 >= -float64(b.burst) {
		l.ReserveN(now, 1)
	}
}

// sweep forgets the keys whose bucket is full again: forgetting them
// changes nothing, and leaves the bound to the keys being limited.
func (b *buckets) sweep(now time.Time) {
	if b == nil {
		return
	}
	for _, k := range b.keys.Keys() {
		if l, ok := b.keys.Peek(k); ok && l.TokensAt(now) >= float64(b.burst) {
			b.keys.Remove(k)
		}
	}
}

// limits are the instance's token buckets and caps.
type limits struct {
	attempts  *buckets // per student, attempt POSTs
	signups   *buckets // per client address
	tokenMiss *buckets // per client address, tokens PostgreSQL did not know
	logins    loginLimits
}

func newLimits(cfg Config) (l limits, err error) {
	keys := cfg.RateLimitKeys
	for _, b := range []struct {
		p     **buckets
		rate  float64
		burst int
	}{
		{&l.attempts, cfg.AttemptRate, cfg.AttemptBurst},
		{&l.signups, cfg.SignupRate, cfg.SignupBurst},
		{&l.tokenMiss, cfg.TokenMissRate, cfg.TokenMissBurst},
		{&l.logins.address, cfg.LoginFailureRate, cfg.LoginFailureBurst},
		{&l.logins.account, cfg.AccountFailureRate, cfg.AccountFailureBurst},
		{&l.logins.pair, cfg.PairFailureRate, cfg.PairFailureBurst},
	} {
		if *b.p, err = newBuckets(b.rate, b.burst, keys); err != nil {
			return l, err
		}
	}
	return l, nil
}

// sweepEvery is how often the limits forget keys whose buckets are full.
const sweepEvery = time.Minute

// sweepLimits drops the keys of full buckets every sweepEvery until ctx ends.
func (s *Server) sweepLimits(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l := s.limits
			for _, b := range []*buckets{l.attempts, l.signups, l.tokenMiss, l.logins.address, l.logins.account, l.logins.pair} {
				b.sweep(now)
			}
		}
	}
}

// rateLimited is the 429 of a limit, with the Retry-After it carries.
func (s *Server) rateLimited(limit string, wait time.Duration, what string) error {
	s.refusal(limit)
	return &retryLater{
		err:   &Error{http.StatusTooManyRequests, "rate_limited", what},
		after: int(math.Ceil(wait.Seconds())),
	}
}

// limitAttempts is the per-student bucket of attempt POSTs; it runs after
// authenticate and before the body is read (401, then 429, then the rest).
func (s *Server) limitAttempts(next echo.HandlerFunc) echo.HandlerFunc {
	if s.limits.attempts == nil {
		return next
	}
	return func(c echo.Context) error {
		if ok, wait := s.limits.attempts.take(session(c).Student.ID.String()); !ok {
			return s.rateLimited("attempt_rate", wait, "too many attempts; retry after the time in Retry-After")
		}
		return next(c)
	}
}

// limitSignups is the per-address bucket of signups, taken before the
// body is read: every try counts. Logins have limits of their own
// (api/logins.go), which count only failures.
func (s *Server) limitSignups(next echo.HandlerFunc) echo.HandlerFunc {
	if s.limits.signups == nil {
		return next
	}
	return func(c echo.Context) error {
		if ok, wait := s.limits.signups.take(clientKey(c)); !ok {
			return s.rateLimited("signup_rate", wait, "too many signups from this address; retry after the time in Retry-After")
		}
		return next(c)
	}
}

// unsettledCheckTimeout bounds counting a student's unsettled attempts;
// past it the POST goes on, and the publish decides.
const unsettledCheckTimeout = 500 * time.Millisecond

// checkUnsettled refuses an attempt POST when the student already has
// MaxUnsettledPerStudent attempts in the event log that no worker has
// settled. The answer is 503, not 429: a student only gets there when the
// workers are behind or stopped (the per-student rate limit answers a
// client that floods first), it is the last in the HTTP contract's order
// (after every 4xx, so that bad input is still told what is wrong), and
// it asks for exactly what a 503 asks for, a retry with the same key
// later. When the count cannot be had (the event log is down or slow) it
// lets the POST go on: the publish then answers.
func (s *Server) checkUnsettled(ctx context.Context, student uuid.UUID) error {
	limit := s.cfg.MaxUnsettledPerStudent
	if limit < 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, unsettledCheckTimeout)
	defer cancel()
	floor, err := s.ackFloor(ctx)
	if err != nil {
		return nil
	}
	// A count as this instance's view of the log has it once it has passed
	// this instance's own publishes, without learning the log's position:
	// a bound need not count another instance's last milliseconds.
	n, err := s.events.CountStudentAttempts(tail.WithPosition(ctx, s.published.Load()), student, floor, limit)
	if err != nil || n < limit {
		return nil
	}
	s.refusal("unsettled")
	return &Error{http.StatusServiceUnavailable, "unavailable",
		"too many of your attempts are still being recorded; retry with the same Idempotency-Key shortly"}
}

// handlerDeadline is how long a handler may take: a little less than
// WriteTimeout, so that a request that runs out of time still gets its
// 503 before the server stops writing.
func (s *Server) handlerDeadline() time.Duration {
	return s.cfg.WriteTimeout - min(time.Second, s.cfg.WriteTimeout/10)
}

// deadline gives every request's context the handler deadline.
func (s *Server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	d := s.handlerDeadline()
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), d)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// timedOut reports whether err is the request's own deadline running out.
func timedOut(c echo.Context, err error) bool {
	return errors.Is(err, context.DeadlineExceeded) && errors.Is(c.Request().Context().Err(), context.DeadlineExceeded)
}
