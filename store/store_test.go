package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

func attempt(student, quiz, course uuid.UUID, score int, at time.Time) store.Attempt {
	return store.Attempt{
		ID: uuid.New(), StudentID: student, QuizID: quiz, CourseID: course,
		Answers: []byte(`[]`), AnswersHash: make([]byte, 32), Score: score, MaxScore: 10,
		SubmittedAt: at.UTC().Truncate(time.Microsecond), StreamSeq: 1,
	}
}

func TestInsertAttemptsIsIdempotent(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	ctx := t.Context()
	student, quiz, course := uuid.New(), uuid.New(), uuid.New()
	now := time.Now()
	a, b := attempt(student, quiz, course, 3, now), attempt(student, quiz, course, 7, now.Add(time.Second))
	c := attempt(student, uuid.New(), course, 5, now)

	// A batch holding the same attempt twice (a redelivery) stores it once.
	res, err := st.InsertAttempts(ctx, []store.Attempt{a, b, a, c})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 3 {
		t.Fatalf("inserted %d, want 3", res.Inserted)
	}
	// The whole batch again changes nothing, progress included.
	res, err = st.InsertAttempts(ctx, []store.Attempt{c, b, a})
	if err != nil || res.Inserted != 0 || res.ProgressRows != 0 {
		t.Fatalf("second insert: %+v, %v", res, err)
	}
	prog, err := st.GetProgress(ctx, student)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uuid.UUID]store.Progress{}
	for _, p := range prog {
		got[p.QuizID] = p
	}
	if p := got[quiz]; p.Attempts != 2 || p.BestScore != 7 || p.CourseID != course {
		t.Fatalf("progress of quiz: %+v", p)
	}
	if p := got[c.QuizID]; p.Attempts != 1 || p.BestScore != 5 {
		t.Fatalf("progress of the other quiz: %+v", p)
	}
	stored, err := st.GetAttempt(ctx, student, b.ID)
	if err != nil || stored.Score != 7 || !stored.SubmittedAt.Equal(b.SubmittedAt) || stored.Status != store.StatusRecorded {
		t.Fatalf("GetAttempt: %+v, %v", stored, err)
	}
	if _, err := st.GetAttempt(ctx, uuid.New(), b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another student's attempt: %v, want ErrNotFound", err)
	}
}

func TestInsertAttemptsRefusesBadDataWhole(t *testing.T) {
	t.Parallel()
	st, dbURL := storetest.Open(t)
	good := attempt(uuid.New(), uuid.New(), uuid.New(), 1, time.Now())
	bad := attempt(uuid.New(), uuid.New(), uuid.New(), 11, time.Now()) // score over max_score
	_, err := st.InsertAttempts(t.Context(), []store.Attempt{good, bad})
	if !store.IsDataError(err) || store.IsTransient(err) {
		t.Fatalf("err = %v, want a data error", err)
	}
	if n := storetest.Int(t, storetest.DB(t, dbURL), `SELECT count(*) FROM attempts`); n != 0 {
		t.Fatalf("rows = %d: a refused batch must write nothing", n)
	}
}

func TestListAttemptsPages(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	ctx := t.Context()
	student, quiz, course := uuid.New(), uuid.New(), uuid.New()
	base := time.Now()
	var batch []store.Attempt
	for i := range 7 {
		batch = append(batch, attempt(student, quiz, course, i, base.Add(time.Duration(i%3)*time.Second)))
	}
	batch = append(batch, attempt(uuid.New(), quiz, course, 1, base)) // someone else's
	if _, err := st.InsertAttempts(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var seen []store.Attempt
	p := store.ListAttemptsParams{StudentID: student, Limit: 3}
	for range 10 {
		page, err := st.ListAttempts(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, page...)
		if len(page) < p.Limit {
			break
		}
		last := page[len(page)-1]
		p.After = &store.Cursor{SubmittedAt: last.SubmittedAt, ID: last.ID}
	}
	if len(seen) != 7 {
		t.Fatalf("paged through %d attempts, want 7", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		prev, cur := seen[i-1], seen[i]
		if cur.SubmittedAt.After(prev.SubmittedAt) ||
			(cur.SubmittedAt.Equal(prev.SubmittedAt) && cur.ID.String() >= prev.ID.String()) {
			t.Fatalf("attempt %d out of order: %v %s after %v %s", i, cur.SubmittedAt, cur.ID, prev.SubmittedAt, prev.ID)
		}
	}
	none, err := st.ListAttempts(ctx, store.ListAttemptsParams{StudentID: student, QuizID: uuid.New(), Limit: 10})
	if err != nil || len(none) != 0 {
		t.Fatalf("filter on another quiz: %d rows, %v", len(none), err)
	}
}

func TestContentRoundTrip(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t) // seeded with the demo content
	ctx := t.Context()
	changed, err := st.SaveContent(ctx, store.DemoContent(store.DefaultDemo))
	if err != nil || changed != 0 {
		t.Fatalf("seeding again changed %d rows (%v), want 0", changed, err)
	}
	got, err := st.LoadContent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := store.DemoContent(store.DefaultDemo); !reflect.DeepEqual(got, want) {
		a, _ := json.Marshal(got[0])
		b, _ := json.Marshal(want[0])
		t.Fatalf("loaded content differs from what was saved:\n got %s\nwant %s", a, b)
	}
	if n := len(got) * len(got[0].Quizzes) * len(got[0].Quizzes[0].Questions); n != 2000 {
		t.Fatalf("demo has %d questions, want 2000", n)
	}
	edited := store.DemoContent(store.DefaultDemo)
	edited[0].Title = "Renamed"
	if changed, err := st.SaveContent(ctx, edited); err != nil || changed != 1 {
		t.Fatalf("one edit changed %d rows (%v), want 1", changed, err)
	}
}

func TestAccountsAndTokens(t *testing.T) {
	t.Parallel()
	st, _ := storetest.Open(t)
	ctx := t.Context()
	s := store.Student{ID: uuid.New(), Email: "Ada@Example.com", Name: "Ada", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := st.CreateStudent(ctx, store.NewStudent{Student: s, PasswordHash: "hash"}); err != nil {
		t.Fatal(err)
	}
	dup := s
	dup.ID, dup.Email = uuid.New(), "ada@example.COM"
	if err := st.CreateStudent(ctx, store.NewStudent{Student: dup, PasswordHash: "hash"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same email in another case: %v, want ErrConflict", err)
	}
	got, hash, err := st.StudentByEmail(ctx, "ADA@example.com")
	if err != nil || got.ID != s.ID || hash != "hash" {
		t.Fatalf("StudentByEmail: %+v %q %v", got, hash, err)
	}
	tok := []byte("0123456789abcdef0123456789abcdef")
	if err := st.CreateToken(ctx, tok, s.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if sess, err := st.SessionByToken(ctx, tok); err != nil || sess.Student.ID != s.ID {
		t.Fatalf("SessionByToken: %+v, %v", sess, err)
	}
	expired := []byte("expiredexpiredexpiredexpiredexpi")
	if err := st.CreateToken(ctx, expired, s.ID, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SessionByToken(ctx, expired); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v, want ErrNotFound", err)
	}
	if err := st.DeleteToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SessionByToken(ctx, tok); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked token: %v, want ErrNotFound", err)
	}
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	name := "quizstream_test_ensure_" + uuid.NewString()[:8]
	u := storetest.WithDatabase(storetest.AdminURL(), name)
	t.Cleanup(func() {
		db, err := pgxpool.New(context.Background(), storetest.AdminURL())
		if err == nil {
			db.Exec(context.Background(), `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
			db.Close()
		}
	})
	for i, want := range []bool{true, false} {
		created, err := store.EnsureDatabase(ctx, u)
		if err != nil || created != want {
			t.Fatalf("call %d: created=%v err=%v, want created=%v", i+1, created, err, want)
		}
	}
}
