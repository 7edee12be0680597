// Package health is readiness, written once: the API's public /readyz and
// the operations listener of every process answer from the same checks and
// in the same shape, so a load balancer and an operator see one truth.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Check is one dependency of a process's readiness.
type Check struct {
	// Name labels the check in the response body ("event_log", "postgres").
	Name string
	// Required checks take the process out of rotation when they fail;
	// the others are only reported.
	Required bool
	// Probe returns nil when the dependency answers.
	Probe func(ctx context.Context) error
}

// Readiness answers /readyz from its checks. It is safe for concurrent use.
type Readiness struct {
	checks     []Check
	draining   atomic.Bool
	timeout    time.Duration
	retryAfter string
}

// New returns a Readiness over checks; each probe gets at most two seconds,
// and a 503 carries Retry-After: retryAfterSeconds (at least 1).
func New(retryAfterSeconds int, checks ...Check) *Readiness {
	return &Readiness{checks: checks, timeout: 2 * time.Second, retryAfter: strconv.Itoa(max(retryAfterSeconds, 1))}
}

// With returns a Readiness over r's checks and more; it starts undrained.
func (r *Readiness) With(checks ...Check) *Readiness {
	all := append(append([]Check(nil), r.checks...), checks...)
	return &Readiness{checks: all, timeout: r.timeout, retryAfter: r.retryAfter}
}

// Drain makes every later answer 503 "shutting down": the first step of a
// graceful shutdown, so that load balancers stop sending.
func (r *Readiness) Drain() { r.draining.Store(true) }

// Status runs every check and returns each one's state ("ok" or what
// failed) and the first problem that makes the process unready ("" when
// ready). Error texts go to the operations listener and the log; the
// public /readyz serves Public, which leaves them out.
func (r *Readiness) Status(ctx context.Context) (checks map[string]string, problem string) {
	return r.status(ctx, false)
}

// down is what a failed check reads as on the public listener.
const down = "down"

func (r *Readiness) status(ctx context.Context, redact bool) (checks map[string]string, problem string) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	checks = make(map[string]string, len(r.checks))
	if r.draining.Load() {
		problem = "shutting down"
	}
	for _, c := range r.checks {
		checks[c.Name] = "ok"
		err := c.Probe(ctx)
		if err == nil {
			continue
		}
		detail := err.Error()
		if redact {
			// An error text can name hosts, users, databases and versions:
			// the public listener says which dependency, not why.
			detail = down
		}
		checks[c.Name] = detail
		if c.Required && problem == "" {
			problem = c.Name + ": " + detail
		}
	}
	return checks, problem
}

// ServeHTTP answers 200 {"status":"ready","checks":{...}} or 503 in the
// API's error shape with the checks beside it, each failed check with its
// error text: for the operations listener.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.serve(w, req, false)
}

// Public returns a handler that answers as ServeHTTP does, in the same
// shape and with the same statuses, but with every failed check reading
// "down" instead of its error text: for a listener anyone can reach.
func (r *Readiness) Public() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serve(w, req, true) })
}

func (r *Readiness) serve(w http.ResponseWriter, req *http.Request, redact bool) {
	checks, problem := r.status(req.Context(), redact)
	status, body := http.StatusOK, map[string]any{"status": "ready", "checks": checks}
	if problem != "" {
		w.Header().Set("Retry-After", r.retryAfter)
		status, body = http.StatusServiceUnavailable, map[string]any{
			"error":  map[string]string{"code": "unavailable", "message": problem},
			"checks": checks,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent: a body that cannot be written is a prober that
	// left, with nothing to tell it.
	_ = json.NewEncoder(w).Encode(body)
}
