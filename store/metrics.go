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
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
