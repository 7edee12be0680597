package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

func (s *Server) livez(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when this instance can take attempts: the event log
// answers and content is loaded. PostgreSQL is reported but does not take
// the instance out of rotation: attempt POSTs never need it.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"event_log": "ok", "content": "ok", "postgres": "ok"}
	problem := ""
	if s.draining.Load() {
		problem = "shutting down"
	}
	if err := s.events.Ping(ctx); err != nil {
		checks["event_log"] = err.Error()
		if problem == "" {
			problem = "event_log: " + err.Error()
		}
	}
	if s.content.Load() == nil {
		checks["content"] = "not loaded"
		if problem == "" {
			problem = "content: not loaded"
		}
	}
	if err := s.store.Ping(ctx); err != nil {
		checks["postgres"] = err.Error()
	}
	if problem != "" {
		c.Response().Header().Set("Retry-After", strconv.Itoa(s.cfg.RetryAfterSeconds))
		return c.JSON(http.StatusServiceUnavailable, map[string]any{
			"error":  map[string]string{"code": "unavailable", "message": problem},
			"checks": checks,
		})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}
