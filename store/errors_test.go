package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

// PostgreSQL refusing a connection is an outage, whatever reason it gives
// (its SQLSTATE is the reason for the refusal, not a verdict on the
// statement, which never ran): ErrUnavailable and transient, so that the
// API answers 503 and the worker retries.
func TestRefusedConnectionsAreUnavailable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) || !store.IsTransient(err) || errors.Is(err, store.ErrInvalid) || store.IsDataError(err) {
			t.Errorf("%s: %v; want ErrUnavailable and transient", what, err)
		}
	}
	// No such database (3D000), no such role (28000).
	_, err := store.Open(ctx, store.Config{URL: storetest.WithDatabase(storetest.AdminURL(), "quizstream_no_such_database")})
	check("no such database", err)
	u, _ := url.Parse(storetest.AdminURL())
	u.User = url.User("quizstream_no_such_role")
	_, err = store.Open(ctx, store.Config{URL: u.String()})
	check("no such role", err)

	// A database that stops accepting connections (55000), with the
	// store's connections ended under it.
	st, dbURL := storetest.Open(t)
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(must(url.Parse(dbURL)).Path, "/")
	admin, err := pgx.Connect(ctx, storetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), storetest.AdminURL())
		if err == nil {
			c.Exec(context.Background(), fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS true`, name))
			c.Close(context.Background())
		}
	})
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS false`, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, _, err := st.StudentByEmail(ctx, "a@example.com")
		check(fmt.Sprintf("query %d with connections refused", i), err)
	}
	check("ping with connections refused", st.Ping(ctx))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// PostgreSQL refusing a value (SQLSTATE class 22: here a NUL in text) is
// ErrInvalid: the caller's input, never transient.
func TestDataErrorsAreInvalid(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	_, _, err := st.StudentByEmail(t.Context(), "nul\x00@example.com")
	if !errors.Is(err, store.ErrInvalid) || store.IsTransient(err) || errors.Is(err, store.ErrUnavailable) || !store.IsDataError(err) {
		t.Fatalf("a NUL in text: %v; want ErrInvalid, a data error, not transient", err)
	}
}

// A number out of its integer column's range is refused before PostgreSQL
// sees it, as PostgreSQL would refuse it, rather than stored wrapped
// around: ErrInvalid, a data error (so that the workers set the event
// aside instead of retrying it), and nothing written.
func TestOutOfRangeNumbersAreInvalid(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	ctx := t.Context()
	const tooBig = math.MaxInt32 + 1
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrInvalid) || !store.IsDataError(err) || store.IsTransient(err) {
			t.Errorf("%s out of range: %v; want ErrInvalid, a data error, not transient", what, err)
		}
	}

	course := store.Course{ID: uuid.New(), Slug: "range-" + uuid.NewString(), Title: "Range"}
	course.Quizzes = []store.Quiz{{ID: uuid.New(), CourseID: course.ID, Title: "Timed", TimeLimit: time.Hour, MaxSessions: tooBig}}
	_, err := st.SaveContent(ctx, []store.Course{course})
	check("max_sessions", err)
	if n := storetest.Int(t, st.Pool(), `SELECT count(*) FROM courses WHERE id = $1`, course.ID); n != 0 {
		t.Errorf("the refused content stored %d course(s)", n)
	}

	now := time.Now()
	session := store.ExamSession{ID: uuid.New(), StudentID: uuid.New(), QuizID: uuid.New(), CourseID: uuid.New(),
		Number: 1, StartedAt: now, Deadline: now.Add(time.Hour), GraceS: tooBig, StreamSeq: 1}
	_, err = st.WriteExamEvents(ctx, store.ExamBatch{Sessions: []store.ExamSession{session}})
	check("grace_s", err)
	if n := storetest.Int(t, st.Pool(), `SELECT count(*) FROM exam_sessions WHERE id = $1`, session.ID); n != 0 {
		t.Errorf("the refused session was stored %d time(s)", n)
	}
}
