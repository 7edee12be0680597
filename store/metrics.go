package store

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// queryCounter counts every statement sent to PostgreSQL (BEGIN and
// COMMIT included) and every COPY, so that "this read costs one query" is
// a number one can check.
type queryCounter struct {
	n atomic.Uint64
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (q *queryCounter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (q *queryCounter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// Queries returns how many statements this Store has sent to PostgreSQL.
func (s *Store) Queries() uint64 { return s.queries.n.Load() }

func registerMetrics(reg prometheus.Registerer, q *queryCounter, pool *pgxpool.Pool) error {
	if reg == nil {
		return nil
	}
	stat := func(f func(*pgxpool.Stat) float64) func() float64 {
		return func() float64 { return f(pool.Stat()) }
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quizstream_store_queries_total",
			Help: "Statements sent to PostgreSQL (BEGIN, COMMIT and COPY included).",
		}, func() float64 { return float64(q.n.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quizstream_store_pool_acquired_connections",
			Help: "Pool connections in use.",
		}, stat(func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quizstream_store_pool_total_connections",
			Help: "Pool connections open.",
		}, stat(func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quizstream_store_pool_empty_acquires_total",
			Help: "Acquires that had to wait for a connection.",
		}, stat(func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quizstream_store_pool_idle_connections",
			Help: "Pool connections open and idle.",
		}, stat(func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quizstream_store_pool_max_connections",
			Help: "Most connections the pool opens (Config.MaxConns).",
		}, stat(func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quizstream_store_pool_acquires_total",
			Help: "Connections acquired from the pool.",
		}, stat(func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) })),
		// A sum rather than a histogram, since pgxpool keeps only the sum:
		// rate(acquire_seconds_total) / rate(acquires_total) is the mean wait.
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quizstream_store_pool_acquire_seconds_total",
			Help: "Time spent acquiring connections from the pool, summed over every acquire.",
		}, stat(func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quizstream_store_pool_empty_acquire_wait_seconds_total",
			Help: "Time spent waiting by acquires that found no idle connection.",
		}, stat(func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quizstream_store_pool_canceled_acquires_total",
			Help: "Acquires given up because their context ended first.",
		}, stat(func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) })),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
