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

func bearer(c echo.Context) (string, bool) {
	h := c.Request().Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, len(tok) == 43 // 32 bytes, base64url without padding
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
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, ok := bearer(c)
		if !ok {
			return errUnauthorized
		}
		key := string(tokenHash(tok))
		now := time.Now()
		cached, hit := s.tokens.Get(key)
		if !hit || now.Sub(cached.checked) >= s.cfg.TokenCacheTTL {
			ctx := c.Request().Context()
			if hit { // a slow database must not hold up a token it confirmed before
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, s.cfg.TokenCheckTimeout)
				defer cancel()
			}
			sess, err := s.store.SessionByToken(ctx, []byte(key))
			switch {
			case err == nil:
				cached, hit = cachedSession{sess, now}, true
				s.tokens.Add(key, cached)
			case errors.Is(err, store.ErrNotFound):
				s.tokens.Remove(key)
				return errUnauthorized
			case !hit || !errors.Is(err, store.ErrUnavailable):
				return err
			}
		}
		if !now.Before(cached.ExpiresAt) {
			s.tokens.Remove(key)
			return errUnauthorized
		}
		c.Set(sessionKey, cached.Session)
		return next(c)
	}
}

func session(c echo.Context) store.Session {
	return c.Get(sessionKey).(store.Session)
}
