// PostgreSQL unreachable at the store's boundary: the error class callers
// decide on (ErrUnavailable, transient). The whole stack with PostgreSQL cut
// off under load is tested in test/faults (TestDatabaseUnreachable) and
// test/faults/suite (TestFaultDatabaseUnreachable10s).

package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/store"
)

// An eager Open of an unreachable database fails as unavailable, which
// callers retry.
func TestUnreachableIsTransient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := store.Open(ctx, store.Config{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable"})
	if !errors.Is(err, store.ErrUnavailable) || !store.IsTransient(err) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// A lazy Open succeeds with PostgreSQL unreachable; its queries fail as
// unavailable until it answers.
func TestLazyOpen(t *testing.T) {
	t.Parallel()
	st, err := store.Open(t.Context(), store.Config{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable", Lazy: true, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatalf("lazy open of an unreachable database: %v", err)
	}
	defer st.Close()
	if _, err := st.GetAttempt(t.Context(), uuid.New(), uuid.New()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("query on an unreachable database: %v, want ErrUnavailable", err)
	}
}
