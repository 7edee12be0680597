// Package baseline is the yardstick of quizstream's benchmark, and nothing
// else (not a product mode): quizstream's own API server — same auth and
// token cache, same grading against the in-memory answer key, same JSON
// encoding, same PostgreSQL pool and store code — that differs in one
// thing only: an attempt is written to PostgreSQL by a synchronous
// single-row insert on the request path (store.InsertAttempts with one
// row, mapped from the event exactly as a worker maps it, progress updated
// in the same transaction), instead of being published to JetStream and
// written by a worker later. The 202 then follows the database's commit,
// as in the classic stack quizstream replaces.
package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// Log is an api.EventLog that stores each attempt in PostgreSQL before it
// returns: everything it accepted is settled at once.
type Log struct {
	store *store.Store
	seq   atomic.Uint64 // a sequence for Published.Seq and the row's stream_seq
}

var _ api.EventLog = (*Log)(nil)

// New returns a Log writing to st.
func New(st *store.Store) *Log { return &Log{store: st} }

// PublishAttempt inserts e's row (and its progress) in one transaction and
// returns once it committed. When the attempt id is stored already (a
// retry with the same Idempotency-Key) it returns the stored original with
// Duplicate set, as the stream does. An error means the insert's outcome is
// unknown.
func (l *Log) PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (eventlog.Published, error) {
	seq := l.seq.Add(1)
	res, err := l.store.InsertAttempts(ctx, []store.Attempt{worker.Row(seq, e)})
	if err != nil {
		return eventlog.Published{}, fmt.Errorf("baseline: insert attempt: %w", err)
	}
	if res.Inserted == 1 {
		return eventlog.Published{Event: e, Seq: seq}, nil
	}
	row, err := l.store.GetAttempt(ctx, e.StudentID, e.AttemptID)
	if err != nil {
		return eventlog.Published{}, fmt.Errorf("baseline: read the original attempt: %w", err)
	}
	orig, err := eventOf(row)
	if err != nil {
		return eventlog.Published{}, err
	}
	return eventlog.Published{Event: orig, Seq: row.StreamSeq, Duplicate: true}, nil
}

// eventOf is the event a stored row was made from (worker.Row inverted).
func eventOf(a store.Attempt) (events.AttemptSubmitted, error) {
	var answers []events.Answer
	if err := json.Unmarshal(a.Answers, &answers); err != nil {
		return events.AttemptSubmitted{}, fmt.Errorf("baseline: decode the answers of attempt %s: %w", a.ID, err)
	}
	return events.AttemptSubmitted{
		AttemptID: a.ID, StudentID: a.StudentID, QuizID: a.QuizID, CourseID: a.CourseID,
		IdempotencyKey: a.IdempotencyKey, Answers: answers, AnswersHash: a.AnswersHash,
		Score: a.Score, MaxScore: a.MaxScore, SubmittedAt: a.SubmittedAt,
	}, nil
}

// AckFloor returns the highest sequence: every accepted attempt is stored.
func (l *Log) AckFloor(context.Context) (uint64, error) { return math.MaxUint64, nil }

// Attempt returns eventlog.ErrNotInLog: an attempt not in the database was
// never accepted.
func (l *Log) Attempt(context.Context, uuid.UUID, uuid.UUID) (eventlog.Published, error) {
	return eventlog.Published{}, eventlog.ErrNotInLog
}

// StudentAttempts returns none: nothing is accepted and not yet stored.
func (l *Log) StudentAttempts(context.Context, uuid.UUID, uint64, int) ([]eventlog.Published, error) {
	return nil, nil
}

// CountStudentAttempts returns 0: nothing is accepted and not yet stored.
func (l *Log) CountStudentAttempts(context.Context, uuid.UUID, uint64, int) (int, error) {
	return 0, nil
}

// Capacity returns no limit: there is no stream to fill.
func (l *Log) Capacity(context.Context) (streams.Capacity, error) { return streams.Capacity{}, nil }

// Trimmed returns true: PostgreSQL alone knows every attempt, so a keyed
// retry is looked up there before it is inserted.
func (l *Log) Trimmed(context.Context) bool { return true }

// Ping returns nil: there is no log to be down.
func (l *Log) Ping(context.Context) error { return nil }

// Config says where the baseline serves.
type Config struct {
	// DatabaseURL is PostgreSQL, migrated and seeded. Required.
	DatabaseURL string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is a baseline API: quizstream's api.Server on its own store.
type Server struct {
	*api.Server
	Store *store.Store
}

// NewServer opens the store as the quizstream binary does (same pool
// defaults, metrics registered) and builds the API on it with a Log; it
// returns the first error.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("baseline: Config.DatabaseURL is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	st, err := store.Open(ctx, store.Config{URL: cfg.DatabaseURL, Registerer: reg})
	if err != nil {
		return nil, err
	}
	// The per-student attempt limiter is off, as in the quizstream stack
	// the benchmark starts: closed-loop students submit far above a
	// person's pace, and the limiter is not what is compared.
	srv, err := api.NewServer(ctx, api.Config{Store: st, Events: New(st), Logger: cfg.Logger, Registerer: reg, AttemptRate: -1})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Server{Server: srv, Store: st}, nil
}

// Serve answers HTTP on ln until ctx ends, then drains and closes the
// store; it returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.Store.Close()
	return s.Server.Serve(ctx, ln)
}
