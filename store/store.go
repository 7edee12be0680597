// Package store is quizstream's only door to PostgreSQL: every SQL
// statement lives here, and pgx errors become ErrNotFound, ErrConflict or
// ErrUnavailable once, at this boundary.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
)

var (
	// ErrNotFound means the row asked for does not exist (or is not the caller's).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable means PostgreSQL could not be reached, refused the
	// connection or is shutting down: the same call may succeed later.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrInvalid means PostgreSQL refused a value itself (SQLSTATE class
	// 22, data exception: a NUL byte in text, a number out of range), or
	// the store did before sending it (a number out of its column's range):
	// the same call fails the same way, so it is the caller's input at fault.
	ErrInvalid = errors.New("store: invalid data")
)

// Config configures Open.
type Config struct {
	// URL is a PostgreSQL connection string. Required.
	URL string
	// MaxConns caps the pool. Defaults to 4 per CPU (pgxpool's default).
	MaxConns int32
	// ConnectTimeout bounds each new connection. Defaults to 5s.
	ConnectTimeout time.Duration
	// Registerer receives the store's metrics. Defaults to none.
	Registerer prometheus.Registerer
	// Lazy skips Open's check that PostgreSQL answers: the pool connects on
	// first use, so that an API instance starts while the database is down.
	Lazy bool
}

// Store holds the pgx pool. It is safe for concurrent use.
type Store struct {
	pool        *pgxpool.Pool
	queries     *queryCounter
	stmtTimeout time.Duration // of attempt writes: WithStatementTimeout
}

// Open parses cfg, creates the pool and (unless cfg.Lazy) checks that
// PostgreSQL answers; it returns an error naming what failed.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("store: Config.URL is required")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("store: parse database url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	queries := &queryCounter{}
	pc.ConnConfig.Tracer = queries
	// uuid.UUID values encoded as PostgreSQL uuids directly (scanning them
	// takes scanID as well). Without it pgx takes them through their
	// driver.Valuer, a string it first fails to encode in binary (building
	// an error) and then parses: 1.7 us and 20 allocations a value, 16% of
	// a worker's CPU.
	pc.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		pgxuuid.Register(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("store: create pool: %w", err)
	}
	s := &Store{pool: pool, queries: queries}
	if err := registerMetrics(cfg.Registerer, queries, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if cfg.Lazy {
		return s, nil
	}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes every connection of the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping reports whether PostgreSQL answers: nil, or an error wrapping
// ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.pool.Ping(ctx))
}

// Pool returns the underlying pool, for tests and operator tools.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// wrap translates a pgx error into the package's sentinel errors, prefixed
// with the action that failed: ErrNotFound, ErrUnavailable (every failure
// to connect, whatever PostgreSQL said), ErrConflict (a unique violation)
// or ErrInvalid (a data exception). The pgx error stays in the chain.
func wrap(action string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", action, ErrNotFound)
	case IsTransient(err):
		return fmt.Errorf("%s: %w: %w", action, ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return fmt.Errorf("%s: %w: %w", action, ErrConflict, err)
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22"):
		return fmt.Errorf("%s: %w: %w", action, ErrInvalid, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// IsTransient reports whether err is the kind of failure that goes away by
// itself: PostgreSQL unreachable, refusing connections (whatever the
// reason it gives: the database does not exist or does not allow
// connections, the password is wrong, too many clients), restarting, out
// of connections, or a deadline. A constraint violation or bad data in a
// statement is not transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// Before the SQLSTATE: a refused connection carries PostgreSQL's reason
	// (55000, 3D000, 28P01...) inside the connect error, and that reason
	// says nothing about the statement, which never ran.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources
			"57", // operator intervention (admin shutdown, crash recovery)
			"40": // serialization failure, deadlock: safe to run again
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}

// IsDataError reports whether err is PostgreSQL refusing the data itself
// (SQLSTATE class 22, data exception, or 23, integrity constraint
// violation), or the store refusing it before PostgreSQL would
// (ErrInvalid): writing the same rows again fails the same way.
func IsDataError(err error) bool {
	if errors.Is(err, ErrInvalid) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code[:2] == "22" || pgErr.Code[:2] == "23"
}

// int32Of returns n for an integer (int4) column named column, or an error
// wrapping ErrInvalid when n is outside the column's range, as PostgreSQL
// would refuse it (numeric_value_out_of_range is a data exception too).
func int32Of(column string, n int64) (int32, error) {
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %s %d is out of the range of an integer column", ErrInvalid, column, n)
	}
	return int32(n), nil
}

// scanID is a scan target for a uuid column that pgx fills from the
// column's 16 bytes. Given a *uuid.UUID itself, pgx prefers its
// sql.Scanner, and formats each uuid as text for uuid.Parse to read back:
// 80 of them on a page of 20 attempts.
func scanID(id *uuid.UUID) *pgxuuid.UUID { return (*pgxuuid.UUID)(id) }
