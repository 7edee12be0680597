package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

// A migrated database is at the binary's version; an empty one is at 0,
// and reading that creates nothing.
func TestSchemaVersions(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	current, target, err := st.SchemaVersions(t.Context())
	if err != nil || current != target || target < 1 {
		t.Fatalf("a migrated database: %d of %d, %v", current, target, err)
	}

	url := storetest.EmptyDatabase(t)
	empty, err := store.Open(t.Context(), store.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if current, t2, err := empty.SchemaVersions(t.Context()); err != nil || current != 0 || t2 != target {
		t.Fatalf("an empty database: %d of %d, %v; want 0 of %d", current, t2, err, target)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("reading the versions left %d tables (%v)", tables, fmt.Sprint(err))
	}
}
