package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Student is an account.
type Student struct {
	ID        uuid.UUID
	Email     string
	Name      string
	CreatedAt time.Time
}

// Session is what a bearer token stands for.
type Session struct {
	Student   Student
	ExpiresAt time.Time
}

// NewStudent is an account to create, with its first token.
type NewStudent struct {
	Student
	PasswordHash string
	// TokenHash and TokenExpires, when set, describe a first token.
	TokenHash    []byte
	TokenExpires time.Time
}

// CreateStudent inserts an account and its first token in one
// transaction; it returns ErrConflict when the email (compared
// case-insensitively) is taken, and then stores nothing.
func (s *Store) CreateStudent(ctx context.Context, n NewStudent) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO students (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
			n.ID, n.Email, n.Name, n.PasswordHash, n.CreatedAt); err != nil {
			return err
		}
		if n.TokenHash == nil {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO tokens (token_hash, student_id, expires_at) VALUES ($1, $2, $3)`,
			n.TokenHash, n.ID, n.TokenExpires)
		return err
	})
	return wrap("create student", err)
}

// StudentByEmail returns the account and its password hash, or ErrNotFound.
func (s *Store) StudentByEmail(ctx context.Context, email string) (Student, string, error) {
	var st Student
	var hash string
	err := s.pool.QueryRow(ctx,
		`SELECT id, email, name, created_at, password_hash FROM students WHERE lower(email) = lower($1)`, email).
		Scan(scanID(&st.ID), &st.Email, &st.Name, &st.CreatedAt, &hash)
	return st, hash, wrap("student by email", err)
}

// CreateToken stores a token's hash for a student until expiresAt.
func (s *Store) CreateToken(ctx context.Context, tokenHash []byte, studentID uuid.UUID, expiresAt time.Time) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO tokens (token_hash, student_id, expires_at) VALUES ($1, $2, $3)`,
		tokenHash, studentID, expiresAt)
	return wrap("create token", err)
}

// SessionByToken returns the student a live token belongs to, or
// ErrNotFound for an unknown, revoked or expired token.
func (s *Store) SessionByToken(ctx context.Context, tokenHash []byte) (Session, error) {
	var ss Session
	err := s.pool.QueryRow(ctx, `
		SELECT s.id, s.email, s.name, s.created_at, t.expires_at
		FROM tokens t JOIN students s ON s.id = t.student_id
		WHERE t.token_hash = $1 AND t.expires_at > now()`, tokenHash).
		Scan(scanID(&ss.Student.ID), &ss.Student.Email, &ss.Student.Name, &ss.Student.CreatedAt, &ss.ExpiresAt)
	return ss, wrap("session by token", err)
}

// DeleteToken revokes a token; revoking an unknown token is not an error.
func (s *Store) DeleteToken(ctx context.Context, tokenHash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM tokens WHERE token_hash = $1`, tokenHash)
	return wrap("delete token", err)
}

// PurgeExpiredTokens deletes every token that expired before now, in
// batches of at most batch rows (each its own statement, so that a large
// backlog never holds many row locks at once), and returns how many it
// deleted; it stops at the first error, returning the count so far.
func (s *Store) PurgeExpiredTokens(ctx context.Context, now time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 10000
	}
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `
			DELETE FROM tokens WHERE token_hash IN (
				SELECT token_hash FROM tokens WHERE expires_at <= $1 LIMIT $2)`, now, batch)
		if err != nil {
			return total, wrap("purge expired tokens", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
