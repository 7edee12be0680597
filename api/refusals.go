package api

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// refusals logs, per limit, that it refuses requests: one line at the
// first refusal, then at most one every refusalLogEvery with the count
// since, so that a sustained refusal shows in the log without a line a
// request. quizstream_api_refused_total counts every one.
type refusals struct {
	mu     sync.Mutex
	limits map[string]*refusalCount
}

type refusalCount struct {
	last    time.Time
	refused int
}

const refusalLogEvery = 10 * time.Second

// refusal counts a refusal by limit and logs it, throttled.
func (s *Server) refusal(limit string) {
	s.metrics.refused.WithLabelValues(limit).Inc()
	r := &s.refusals
	now := time.Now()
	r.mu.Lock()
	if r.limits == nil {
		r.limits = map[string]*refusalCount{}
	}
	rc := r.limits[limit]
	if rc == nil {
		rc = &refusalCount{}
		r.limits[limit] = rc
	}
	rc.refused++
	if now.Sub(rc.last) < refusalLogEvery {
		r.mu.Unlock()
		return
	}
	n, since := rc.refused, rc.last
	rc.last, rc.refused = now, 0
	r.mu.Unlock()
	attrs := []slog.Attr{slog.String("limit", limit), slog.Int("refused", n)}
	if !since.IsZero() {
		attrs = append(attrs, slog.Duration("since", now.Sub(since)))
	}
	s.log.LogAttrs(context.Background(), slog.LevelWarn, "api: a limit is refusing requests (docs/security.md)", attrs...)
}
