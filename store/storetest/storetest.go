// Package storetest gives tests a real, private PostgreSQL database: each
// call creates one from a migrated and seeded template and drops it when
// the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quizstream/quizstream/migrations"
	"github.com/quizstream/quizstream/store"
)

// AdminURL is the server tests create databases on: $QUIZSTREAM_TEST_DATABASE_URL,
// or the local server as role postgres.
func AdminURL() string {
	if u := os.Getenv("QUIZSTREAM_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// NewDatabase creates an empty-of-students database holding the current
// schema and the demo content, drops it when t ends, and returns its URL.
// It fails t when PostgreSQL cannot be reached.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx) })
	if templateErr != nil {
		t.Fatalf("storetest: template database: %v", templateErr)
	}
	return createDatabase(t, ctx, "TEMPLATE "+templateName)
}

// EmptyDatabase creates a database without any table, as a new server
// has one before `quizstream migrate`, drops it when t ends, and returns
// its URL.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return createDatabase(t, ctx, "")
}

func createDatabase(t testing.TB, ctx context.Context, options string) string {
	t.Helper()
	name := "quizstream_test_" + randomHex(6)
	admin := connect(t, ctx, AdminURL())
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s %s", name, options)); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	admin.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin := connect(t, ctx, AdminURL())
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	return WithDatabase(AdminURL(), name)
}

// Open returns a Store on a new database (see NewDatabase), closed when t ends.
func Open(t testing.TB) (*store.Store, string) {
	t.Helper()
	u := NewDatabase(t)
	st, err := store.Open(context.Background(), store.Config{URL: u})
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(st.Close)
	return st, u
}

// WithDatabase returns base with its database replaced by name.
func WithDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func connect(t testing.TB, ctx context.Context, u string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("storetest: connect to PostgreSQL (%s): %v", AdminURL(), err)
	}
	return c
}

// ensureTemplate builds, once per schema version and across concurrent test
// processes, a database with the migrations applied and the demo content
// seeded, and returns its name.
func ensureTemplate(ctx context.Context) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%+v", store.DefaultDemo)
	name := "quizstream_tpl_" + hex.EncodeToString(h.Sum(nil))[:16]

	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	// Test packages run in parallel processes: one builds, the others wait.
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(7239001)`); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), `SELECT pg_advisory_unlock(7239001)`)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	st, err := store.Open(ctx, store.Config{URL: WithDatabase(AdminURL(), building)})
	if err != nil {
		return "", err
	}
	_, err = st.Migrate(ctx)
	if err == nil {
		_, err = st.SaveContent(ctx, store.DemoContent(store.DefaultDemo))
	}
	st.Close()
	if err != nil {
		return "", err
	}
	// Renamed only when complete, so a half-built template is never used.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", err
	}
	return name, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ProgressDriftSQL returns a query counting the rows of a progress table
// (progress, or a shadow of it) that differ from the aggregate of the
// recorded attempts computed from scratch: the invariant the workers keep,
// so 0 unless it is broken.
func ProgressDriftSQL(table string) string {
	return `
	SELECT count(*) FROM ` + table + ` p FULL JOIN (
		SELECT student_id, quiz_id, min(course_id::text)::uuid AS course_id, count(*)::int AS attempts, max(score) AS best_score
		FROM attempts WHERE status = 'recorded' GROUP BY student_id, quiz_id
	) a ON (p.student_id, p.quiz_id) = (a.student_id, a.quiz_id)
	WHERE p.student_id IS NULL OR a.student_id IS NULL
		OR (p.course_id, p.attempts, p.best_score) IS DISTINCT FROM (a.course_id, a.attempts, a.best_score)`
}

// DB returns a connection pool of its own on the database at url, closed
// when t ends: tests read and arrange rows through it, so that the Store
// itself keeps every SQL statement of the product.
func DB(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("storetest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Int runs a query that returns one integer, or fails t.
func Int(t testing.TB, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("storetest: %s: %v", sql, err)
	}
	return n
}
