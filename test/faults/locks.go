package faults

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/store/storetest"
)

// LockProgress locks the progress table (ACCESS EXCLUSIVE) in a
// transaction on a connection of its own: a worker's batch then blocks
// inside its transaction, after fetch and before commit. release rolls
// the lock back; it may be called more than once and must be deferred, so
// that it runs before the workers are stopped. It fails t when it cannot
// take the lock.
func LockProgress(t testing.TB, dbURL string) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, `LOCK TABLE progress IN ACCESS EXCLUSIVE MODE`)
	}
	if err != nil {
		conn.Close(ctx)
		t.Fatalf("lock progress: %v", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("release progress lock: %v", err)
			}
			conn.Close(ctx)
		})
	}
}

// LockWaiters returns how many batch inserts of the stack's database are
// waiting on a lock; it fails t when it cannot tell.
func LockWaiters(t testing.TB, s *apptest.Stack) int {
	t.Helper()
	return storetest.Int(t, s.DB, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO attempts%'`)
}

// WaitBlocked waits until a worker's batch insert waits on a lock, or
// fails t after 15s.
func WaitBlocked(t testing.TB, s *apptest.Stack) {
	t.Helper()
	apptest.WaitFor(t, 15*time.Second, "a worker's batch insert to wait on the progress lock", func() bool {
		return LockWaiters(t, s) > 0
	})
}

// CountNaks counts, until t ends, the Nak advisories of the stack's
// consumer; it fails t when it cannot subscribe.
func CountNaks(t testing.TB, s *apptest.Stack) *atomic.Int64 {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	var n atomic.Int64
	sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED."+s.Stream.Name+"."+s.Stream.Consumer,
		func(*nats.Msg) { n.Add(1) })
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		t.Fatalf("subscribe to Nak advisories: %v", err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return &n
}
