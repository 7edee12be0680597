package apptest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
)

// Student is an account made straight in the database, with a token:
// signing thousands up through the API would mostly measure argon2id.
type Student struct {
	ID    uuid.UUID
	Token string
}

// On returns a client of the API at base acting as st.
func (st Student) On(base string) *client.Client { return Client(base).WithToken(st.Token) }

// NewStudents creates n students in s's database, each with a token
// valid for a day; it fails t on any error.
func NewStudents(t testing.TB, s *Stack, prefix string, n int) []Student {
	t.Helper()
	out := make([]Student, n)
	for i := range out {
		b := make([]byte, 32)
		rand.Read(b)
		tok := base64.RawURLEncoding.EncodeToString(b)
		sum := sha256.Sum256([]byte(tok))
		id := uuid.New()
		err := s.Store.CreateStudent(t.Context(), store.NewStudent{
			Student:      store.Student{ID: id, Email: fmt.Sprintf("%s-%d-%s@example.com", prefix, i, id), Name: "Student", CreatedAt: time.Now()},
			PasswordHash: "not a hash: this account has a token only",
			TokenHash:    sum[:], TokenExpires: time.Now().Add(24 * time.Hour),
		})
		if err != nil {
			t.Fatalf("apptest: create student: %v", err)
		}
		out[i] = Student{ID: id, Token: tok}
	}
	return out
}
