package api

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	publishes    *prometheus.CounterVec
	refused      *prometheus.CounterVec
	connections  prometheus.Gauge
	hashes       *prometheus.CounterVec
	tokensPurged prometheus.Counter
	fallbacks    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_api_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quizstream_api_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_api_attempt_publishes_total",
			Help: "Attempt publishes by result: published, duplicate (the log held it already), failed (client got 503).",
		}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_api_refused_total",
			Help: "Requests and connections refused by a limit: attempt_rate, signup_rate, login_account_address, login_account, login_address, token_miss_rate (429); unsettled, connections, address_connections, address_pending (503).",
		}, []string{"limit"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quizstream_api_connections_open",
			Help: "Open connections of the public listener (counted when MaxConnections caps them).",
		}),
		hashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_api_password_hashes_total",
			Help: "Password hashes by result: hashed, or refused (no slot within HashWait; the client got 503).",
		}, []string{"result"}),
		tokensPurged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_api_tokens_purged_total",
			Help: "Expired tokens deleted from PostgreSQL.",
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_api_readmodel_fallbacks_total",
			Help: "Student reads the read model could not answer, read from PostgreSQL instead, by read (progress, attempts, attempt, sessions, session, checks, check) and reason: no_model, missing (no value for the student), error (the bucket did not answer), filter, cursor, limit (beyond the model's page), older (an attempt or check older than the page), output (a check held without its tests and output), size (sessions too large for a value).",
		}, []string{"read", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.publishes, m.refused, m.connections, m.hashes, m.tokensPurged, m.fallbacks} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// instrument counts and times every request, errors included.
func (s *Server) instrument(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(c.Response().Status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}
