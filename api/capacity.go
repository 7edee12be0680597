package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/quizstream/quizstream/health"
)

// errEventLogFull is the 503 of an attempt the stream refused for being
// full: unlike "unavailable", waiting a second does not help; MaxAge
// removing old events or an operator raising the limits does.
var errEventLogFull = &Error{http.StatusServiceUnavailable, "unavailable",
	"the event log is full and accepts no attempt until an operator makes room; the attempt was not stored, retry later"}

// capacityCheck is the readiness check that takes an API instance out of
// rotation while the stream is full, with the fill in the operations
// listener's body: every attempt POST would be a 503 (docs/operations.md,
// "When the stream fills"). One that does not answer is the event_log
// check's to report.
func (s *Server) capacityCheck() health.Check {
	return health.Check{Name: "event_log_capacity", Required: true, Probe: func(ctx context.Context) error {
		c, err := s.events.Capacity(ctx)
		if err != nil || !c.Full() {
			return nil
		}
		return fmt.Errorf("the event log is full: %s; see quizstream stream status", c)
	}}
}

// fullLogs throttles, per Server, the error logged when the stream
// refuses attempts for being full: one line at once, then at most one
// every fullLogEvery with the count of refusals since. (A Server's fields
// are not this file's; the few Servers of a process each keep an entry.)
var fullLogs sync.Map // *Server -> *fullLog

type fullLog struct {
	mu      sync.Mutex
	last    time.Time
	refused int
}

const fullLogEvery = 10 * time.Second

// streamFull logs, throttled, that the stream refused an attempt for being full.
func (s *Server) streamFull(err error) {
	v, _ := fullLogs.LoadOrStore(s, &fullLog{})
	fl := v.(*fullLog)
	fl.mu.Lock()
	fl.refused++
	now := time.Now()
	if now.Sub(fl.last) < fullLogEvery {
		fl.mu.Unlock()
		return
	}
	n := fl.refused
	fl.last, fl.refused = now, 0
	fl.mu.Unlock()
	s.log.LogAttrs(context.Background(), slog.LevelError,
		"api: the event log is full: attempt POSTs are refused (503) until old events expire or an operator raises STREAM_MAX_BYTES/STREAM_MAX_MSGS (quizstream stream apply)",
		slog.Int("refused", n), slog.String("err", err.Error()))
}
