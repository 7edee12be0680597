package client

import (
	"context"
	"net/http"
)

// Signup creates a student and returns it with its first token (use
// WithToken to act as it). It is never retried. It returns an *Error with
// CodeConflict when the email is taken, CodeInvalidRequest for a bad
// email, name or password, or a transport error.
func (c *Client) Signup(ctx context.Context, email, name, password string) (Student, string, error) {
	var out struct {
		Student Student `json:"student"`
		Token   string  `json:"token"`
	}
	_, err := c.do(ctx, call{
		method: http.MethodPost, path: "/api/v1/signup",
		body: map[string]string{"email": email, "name": name, "password": password},
	}, &out)
	if err != nil {
		return Student{}, "", err
	}
	return out.Student, out.Token, nil
}

// Login returns a new token for the student with this email and password.
// It is never retried. It returns an *Error with CodeUnauthorized for a
// wrong email or password, or a transport error.
func (c *Client) Login(ctx context.Context, email, password string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	_, err := c.do(ctx, call{
		method: http.MethodPost, path: "/api/v1/login",
		body: map[string]string{"email": email, "password": password},
	}, &out)
	if err != nil {
		return "", err
	}
	return out.Token, nil
}

// User returns the student whose token c sends. It returns an *Error with
// CodeUnauthorized without a valid token, or the last error once retries
// gave up.
func (c *Client) User(ctx context.Context) (Student, error) {
	var out Student
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/v1/user", idempotent: true}, &out); err != nil {
		return Student{}, err
	}
	return out, nil
}

// Logout revokes the token c sends, on every API instance. It is retried
// (a second logout can do nothing the first did not); a 401 to a retry
// after a try whose outcome is unknown means the token is already dead,
// and counts as success. It returns an *Error with CodeUnauthorized when
// the token was not valid to begin with, or the last error once retries
// gave up.
func (c *Client) Logout(ctx context.Context) error {
	rep, err := c.do(ctx, call{method: http.MethodPost, path: "/api/v1/logout", idempotent: true}, nil)
	if err != nil && rep.tries > 1 && IsCode(err, CodeUnauthorized) {
		return nil
	}
	return err
}
