package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
)

// PurgeExpiredTokens deletes every expired token, batch after batch, and
// nothing else.
func TestPurgeExpiredTokens(t *testing.T) {
	t.Parallel()
	st, u := storetest.Open(t)
	db := storetest.DB(t, u)
	ctx := t.Context()
	s := store.Student{ID: uuid.New(), Email: "purge@example.com", Name: "P", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := st.CreateStudent(ctx, store.NewStudent{Student: s, PasswordHash: "hash"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 5 {
		if err := st.CreateToken(ctx, []byte(fmt.Sprintf("expired-%025d", i)), s.ID, now.Add(-time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := st.CreateToken(ctx, []byte(fmt.Sprintf("live-%028d", i)), s.ID, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := st.PurgeExpiredTokens(ctx, now, 2) // three statements: 2, 2, 1
	if err != nil || n != 5 {
		t.Fatalf("purge: %d, %v; want 5", n, err)
	}
	if left := storetest.Int(t, db, `SELECT count(*) FROM tokens`); left != 2 {
		t.Errorf("%d tokens left, want the 2 live ones", left)
	}
	if n, err := st.PurgeExpiredTokens(ctx, now, 2); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v; want 0", n, err)
	}
}
