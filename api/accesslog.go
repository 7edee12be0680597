package api

import (
	"context"
	"log/slog"
	"math/rand/v2"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// AccessLogOff, as Config.AccessLogLevel, turns the access log off.
const AccessLogOff = slog.Level(1 << 20)

// accessLog is the access log: one line a request, through Echo's request
// logger into the API's slog logger, at AccessLogLevel, for a sample of
// AccessLogSample of the requests. The line holds no header: never a
// token. It is nil, and costs nothing, when the level is off, nothing is
// sampled, or the logger does not enable the level when the server is
// built (Echo builds its middleware anew for every request: even a skipped
// one allocates).
func (s *Server) accessLog() echo.MiddlewareFunc {
	level, sample := s.cfg.AccessLogLevel.Level(), s.cfg.AccessLogSample
	if level >= AccessLogOff || sample <= 0 || !s.log.Enabled(context.Background(), level) {
		return nil
	}
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		Skipper: func(c echo.Context) bool {
			return sample < 1 && rand.Float64() >= sample //nolint:gosec // G404: which requests a sampled log keeps needs no unpredictability
		},
		LogLatency: true, LogRemoteIP: true, LogMethod: true, LogURI: true, LogRoutePath: true,
		LogStatus: true, LogContentLength: true, LogResponseSize: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			route := v.RoutePath
			if route == "" {
				route = "unmatched"
			}
			s.log.LogAttrs(context.WithoutCancel(c.Request().Context()), level, "api: request",
				slog.String("method", v.Method), slog.String("uri", v.URI), slog.String("route", route),
				slog.Int("status", v.Status), slog.Duration("duration", v.Latency),
				slog.String("remote_ip", v.RemoteIP), slog.String("bytes_in", v.ContentLength),
				slog.Int64("bytes_out", v.ResponseSize))
			return nil
		},
	})
}
