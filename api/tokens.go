package api

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// tokenCache is what an instance knows of bearer tokens without asking
// PostgreSQL, each part a bounded LRU keyed by the token's SHA-256:
//   - live: sessions PostgreSQL confirmed, and when;
//   - unknown: tokens PostgreSQL did not know (made up, expired, revoked),
//     answered 401 without asking again for unknownFor, so that the same
//     bad token sent again and again costs one query;
//   - revoked: tokens logged out here or on another instance (a notice),
//     for revokedFor. Every insert into live consults it, under the same
//     lock as revoke, so that a request whose lookup began before the
//     logout cannot put the session back once the logout has run.
type tokenCache struct {
	live       *lru.Cache[string, cachedSession]
	unknown    *lru.Cache[string, time.Time] // until
	revoked    *lru.Cache[string, time.Time] // until
	unknownFor time.Duration
	revokedFor time.Duration
	mu         sync.Mutex // orders put against revoke
}

// newTokenCache returns a cache of size entries in each part. revokedFor
// must outlast any token lookup in flight (the handlers' deadline).
func newTokenCache(size int, unknownFor, revokedFor time.Duration) (*tokenCache, error) {
	t := &tokenCache{unknownFor: unknownFor, revokedFor: revokedFor}
	var err error
	if t.live, err = lru.New[string, cachedSession](size); err != nil {
		return nil, err
	}
	if t.unknown, err = lru.New[string, time.Time](size); err != nil {
		return nil, err
	}
	if t.revoked, err = lru.New[string, time.Time](size); err != nil {
		return nil, err
	}
	return t, nil
}

// get returns the cached session of a token, however old.
func (t *tokenCache) get(key string) (cachedSession, bool) { return t.live.Get(key) }

// refused reports whether a token is known to be bad: revoked, or not
// known to PostgreSQL when it was last asked.
func (t *tokenCache) refused(key string, now time.Time) bool {
	for _, c := range []*lru.Cache[string, time.Time]{t.revoked, t.unknown} {
		if until, ok := c.Get(key); ok {
			if now.Before(until) {
				return true
			}
			c.Remove(key)
		}
	}
	return false
}

// put caches a session PostgreSQL confirmed; it returns false, caching
// nothing, when the token was revoked meanwhile.
func (t *tokenCache) put(key string, s cachedSession) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until, ok := t.revoked.Peek(key); ok && s.checked.Before(until) {
		return false
	}
	t.live.Add(key, s)
	return true
}

// revoke forgets a token and refuses it from now on.
func (t *tokenCache) revoke(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.revoked.Add(key, now.Add(t.revokedFor))
	t.live.Remove(key)
}

// forget records that PostgreSQL does not know a token (any more).
func (t *tokenCache) forget(key string, now time.Time) {
	t.live.Remove(key)
	t.unknown.Add(key, now.Add(t.unknownFor))
}

// purgeTokens deletes expired tokens from PostgreSQL every
// TokenPurgeInterval until ctx ends: a token past its lifetime is refused
// anyway, and the table would otherwise keep every login ever made. Every
// instance purges; the DELETE is the same whoever runs it.
func (s *Server) purgeTokens(ctx context.Context) {
	if s.cfg.TokenPurgeInterval < 0 {
		return
	}
	tick := time.NewTicker(s.cfg.TokenPurgeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := s.store.PurgeExpiredTokens(pctx, time.Now(), 10000)
		cancel()
		s.metrics.tokensPurged.Add(float64(n))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("api: purging expired tokens failed", "purged", n, "err", err)
		case n > 0:
			s.log.Info("api: expired tokens purged", "purged", n)
		}
	}
}
