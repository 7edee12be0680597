package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/health"
)

func (s *Server) livez(c echo.Context) error {
	return writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the API's rule: ready when the event log answers and
// content is loaded. PostgreSQL is reported but does not take the instance
// out of rotation: attempt POSTs never need it.
func (s *Server) readiness() *health.Readiness {
	return health.New(s.cfg.RetryAfterSeconds,
		health.Check{Name: "event_log", Required: true, Probe: s.events.Ping},
		health.Check{Name: "content", Required: true, Probe: func(context.Context) error {
			if s.content.Load() == nil {
				return errors.New("not loaded")
			}
			return nil
		}},
		health.Check{Name: "postgres", Probe: s.store.Ping},
		s.capacityCheck(), // api/capacity.go
	)
}

// Readiness returns the checks behind the API's /readyz, which fail from
// the moment a shutdown begins; the operations listener serves them too.
func (s *Server) Readiness() *health.Readiness { return s.ready }

// readyz is the public /readyz: it names a dependency that is down but
// not its error text, which the operations listener's keeps.
func (s *Server) readyz(c echo.Context) error {
	s.ready.Public().ServeHTTP(c.Response(), c.Request())
	return nil
}
