package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/store"
)

const sessionKey = "quizstream.session"

// newToken returns a bearer token (32 random bytes) and the SHA-256 that is
// all the database ever stores of it.
func newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	return tok, sum[:], nil
}

func tokenHash(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// bearer returns the request's bearer token; false when there is none or
// it is not the shape of one this API issues (43 characters of base64url
// for 32 bytes), which is answered 401 without asking anyone.
func bearer(c echo.Context) (string, bool) {
	h := c.Request().Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if len(tok) != 43 {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	return tok, err == nil && len(b) == 32
}

// cachedSession is a session and when PostgreSQL last confirmed it.
type cachedSession struct {
	store.Session
	checked time.Time
}

// authenticate resolves the bearer token to a session, from the in-process
// cache when it was confirmed within TokenCacheTTL, so that most requests
// (the attempt POST above all) never query PostgreSQL. A token revoked on
// another instance keeps working here for at most TokenCacheTTL. While
// PostgreSQL is unreachable, a token it confirmed before keeps working
// (until its own expiry), so that attempt POSTs go on through an outage.
// A token known to be bad (revoked, or unknown to PostgreSQL lately) is
// answered 401 without a query; a client address that keeps sending
// tokens PostgreSQL does not know is answered 429 before it costs more
// queries (TokenMissRate).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, ok := bearer(c)
		if !ok {
			return errUnauthorized
		}
		key := string(tokenHash(tok))
		now := time.Now()
		cached, hit := s.tokens.get(key)
		if !hit || now.Sub(cached.checked) >= s.cfg.TokenCacheTTL {
			sess, err := s.checkToken(c, key, hit)
			switch {
			case err == nil:
				cached, hit = cachedSession{sess, now}, true
				if !s.tokens.put(key, cached) {
					return errUnauthorized // logged out while it was looked up
				}
			case errors.Is(err, store.ErrNotFound):
				s.tokens.forget(key, now)
				return errUnauthorized
			case !hit || !errors.Is(err, store.ErrUnavailable):
				return err
			}
		}
		if !now.Before(cached.ExpiresAt) {
			s.tokens.forget(key, now)
			return errUnauthorized
		}
		c.Set(sessionKey, cached.Session)
		return next(c)
	}
}

// checkToken asks PostgreSQL for the session of a token (its hash, key)
// that is not cached (hit false) or whose cache entry is old. It returns
// store.ErrNotFound for a token known to be bad without asking, and a 429
// when the token is new to this instance and the client address has used
// up its budget of unknown tokens.
func (s *Server) checkToken(c echo.Context, key string, hit bool) (store.Session, error) {
	ctx := c.Request().Context()
	if hit { // a slow database must not hold up a token it confirmed before
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.TokenCheckTimeout)
		defer cancel()
	} else {
		if s.tokens.refused(key, time.Now()) {
			return store.Session{}, store.ErrNotFound
		}
		if b := s.limits.tokenMiss; b != nil {
			addr := clientKey(c)
			if ok, wait, _ := b.peek(addr); !ok {
				return store.Session{}, s.rateLimited("token_miss_rate", wait, "too many unknown tokens from this address; retry after the time in Retry-After")
			}
			sess, err := s.lookupToken(ctx, key)
			if errors.Is(err, store.ErrNotFound) {
				// Only a token PostgreSQL does not know spends the budget,
				// charged after the fact: a hall's new tokens arriving at
				// once never hold it, as reservations would.
				b.charge(addr)
			}
			return sess, err
		}
	}
	return s.lookupToken(ctx, key)
}

func (s *Server) lookupToken(ctx context.Context, key string) (store.Session, error) {
	sess, err := s.store.SessionByToken(ctx, []byte(key))
	if s.tokenLookedUp != nil {
		s.tokenLookedUp()
	}
	return sess, err
}

func session(c echo.Context) store.Session {
	return c.Get(sessionKey).(store.Session)
}
