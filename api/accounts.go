package api

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

type studentJSON struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func toStudentJSON(st store.Student) studentJSON {
	return studentJSON{ID: st.ID, Email: st.Email, Name: st.Name, CreatedAt: st.CreatedAt.UTC()}
}

type signupRequest struct {
	Email    *string `json:"email"`
	Name     *string `json:"name"`
	Password *string `json:"password"`
}

func validEmail(email string) bool {
	return strings.Contains(email, "@") && utf8.RuneCountInString(email) <= 254
}

// plainText returns an invalid-request error naming field when v is not
// valid UTF-8 or holds a control character (NUL included): PostgreSQL
// refuses a NUL in text, and no email, name or password needs the rest.
// It runs before anything is hashed or queried.
func plainText(field, v string) error {
	if !utf8.ValidString(v) {
		return invalid("%s must be valid UTF-8", field)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return invalid("%s must not contain control characters", field)
	}
	return nil
}

func (s *Server) signup(c echo.Context) error {
	var req signupRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	switch {
	case req.Email == nil || req.Name == nil || req.Password == nil:
		return invalid("email, name and password are required")
	case !validEmail(strings.TrimSpace(*req.Email)):
		return invalid("email must contain @ and be at most 254 characters")
	case utf8.RuneCountInString(*req.Password) < 8 || utf8.RuneCountInString(*req.Password) > 128:
		return invalid("password must be 8 to 128 characters")
	case strings.TrimSpace(*req.Name) == "" || utf8.RuneCountInString(*req.Name) > 100:
		return invalid("name must be 1 to 100 characters")
	}
	for _, f := range []struct{ name, value string }{{"email", *req.Email}, {"name", *req.Name}, {"password", *req.Password}} {
		if err := plainText(f.name, f.value); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	hash, err := s.hasher.hash(ctx, *req.Password)
	if err != nil {
		return err
	}
	st := store.Student{
		ID:        uuid.New(),
		Email:     strings.TrimSpace(*req.Email),
		Name:      *req.Name,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
	tok, tokHash, err := newToken()
	if err != nil {
		return err
	}
	expires := time.Now().Add(s.cfg.TokenLifetime)
	err = s.store.CreateStudent(ctx, store.NewStudent{
		Student: st, PasswordHash: hash, TokenHash: tokHash, TokenExpires: expires,
	})
	if errors.Is(err, store.ErrConflict) {
		return &Error{http.StatusConflict, "conflict", "that email is already registered"}
	}
	if err != nil {
		return err
	}
	s.tokens.put(string(tokHash), cachedSession{store.Session{Student: st, ExpiresAt: expires}, time.Now()})
	return writeJSON(c, http.StatusCreated, map[string]any{"student": toStudentJSON(st), "token": tok})
}

type loginRequest struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

func (s *Server) login(c echo.Context) error {
	var req loginRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	// The contract answers 429 before a 400 for the content: an account's
	// budgets are checked as soon as the body names one.
	if req.Email != nil {
		if err := s.checkLogin(c, *req.Email); err != nil {
			return err
		}
	}
	if req.Email == nil || req.Password == nil {
		return invalid("email and password are required")
	}
	if err := plainText("email", *req.Email); err != nil {
		return err
	}
	if err := plainText("password", *req.Password); err != nil {
		return err
	}
	ctx := c.Request().Context()
	email := strings.TrimSpace(*req.Email)
	var (
		st   store.Student
		hash string
		err  error = store.ErrNotFound // an email no account can have costs no query
	)
	if validEmail(email) {
		st, hash, err = s.store.StudentByEmail(ctx, email)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		hash = s.dummyHash // a wrong email costs as much as a wrong password
	case err != nil:
		return err
	}
	ok, err := s.hasher.verify(ctx, *req.Password, hash)
	if err != nil {
		return err
	}
	if !ok || st.ID == uuid.Nil {
		s.loginFailed(c, *req.Email)
		return &Error{http.StatusUnauthorized, "unauthorized", "wrong email or password"}
	}
	tok, err := s.issueToken(c, st)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]string{"token": tok})
}

func (s *Server) issueToken(c echo.Context, st store.Student) (string, error) {
	tok, hash, err := newToken()
	if err != nil {
		return "", err
	}
	expires := time.Now().Add(s.cfg.TokenLifetime)
	if err := s.store.CreateToken(c.Request().Context(), hash, st.ID, expires); err != nil {
		return "", err
	}
	// Known good: its first request here costs no query, and no share of
	// the address's budget of unknown tokens.
	s.tokens.put(string(hash), cachedSession{store.Session{Student: st, ExpiresAt: expires}, time.Now()})
	return tok, nil
}

func (s *Server) getUser(c echo.Context) error {
	return writeJSON(c, http.StatusOK, toStudentJSON(session(c).Student))
}

func (s *Server) logout(c echo.Context) error {
	tok, _ := bearer(c)
	hash := tokenHash(tok)
	if err := s.store.DeleteToken(c.Request().Context(), hash); err != nil {
		return err
	}
	// A request that looked the token up before the DELETE cannot cache
	// it once this has run (tokenCache.put).
	s.tokens.revoke(string(hash), time.Now())
	if s.cfg.Notices != nil {
		if err := s.cfg.Notices.Notify(events.SubjectTokenRevoked, hash); err != nil {
			// Other instances still drop it within TokenCacheTTL.
			s.log.Warn("api: token revocation notice failed", "err", err)
		}
	}
	return c.NoContent(http.StatusNoContent)
}
