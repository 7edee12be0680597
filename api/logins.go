package api

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// loginLimits throttle failed logins, as OWASP's authentication guidance
// has it, in three budgets that only failures spend (a hall behind one
// NAT logging in spends nothing):
//   - pair: one account from one address, the tight one: guessing one
//     account from one place stops after a few tries;
//   - account: one account from every address together: once spent, an
//     address that has failed on the account lately (its pair budget has
//     not refilled since) is refused, but one that has not still gets its
//     try. A flood against an account slows
//     its guessing to one try an address, and cannot lock its owner out
//     from anywhere else;
//   - address: every account from one address, a budget a hall's typos
//     fit in, against trying many accounts (credential stuffing).
//
// Each is checked before the password is hashed and charged after it
// failed: a refused login costs no hash, and a success costs nothing. A
// nil budget does not limit.
type loginLimits struct {
	pair, account, address *buckets
}

// accountKey is the account a login names: emails compare
// case-insensitively. A key for an email no account has is kept as well,
// so that a refusal says nothing of whether the account exists.
func accountKey(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// pairKey is the key of an (account, address) pair: an email has no NUL
// (plainText refuses it before anything is charged).
func pairKey(account, addr string) string { return account + "\x00" + addr }

// limitLogins refuses a login from an address that has spent its budget
// of failures, before the body is read (the contract answers 429 before
// 413, 415 and 400).
func (s *Server) limitLogins(next echo.HandlerFunc) echo.HandlerFunc {
	b := s.limits.logins.address
	if b == nil {
		return next
	}
	return func(c echo.Context) error {
		if ok, wait, _ := b.peek(clientKey(c)); !ok {
			return s.rateLimited("login_address", wait, "too many failed logins from this address; retry after the time in Retry-After")
		}
		return next(c)
	}
}

// checkLogin returns the 429 of a login from c's address to the account
// named by email when the pair's or the account's budget refuses it, or
// nil. It runs once the body has named the account.
func (s *Server) checkLogin(c echo.Context, email string) error {
	l, addr, account := s.limits.logins, clientKey(c), accountKey(email)
	pairFull := true
	if l.pair != nil {
		ok, wait, full := l.pair.peek(pairKey(account, addr))
		if !ok {
			return s.rateLimited("login_account_address", wait, "too many failed logins to this account from this address; retry after the time in Retry-After")
		}
		pairFull = full
	}
	if l.account != nil && !pairFull {
		if ok, wait, _ := l.account.peek(account); !ok {
			return s.rateLimited("login_account", wait, "too many failed logins to this account; retry after the time in Retry-After")
		}
	}
	return nil
}

// loginFailed charges a failed login to c's address and the account.
func (s *Server) loginFailed(c echo.Context, email string) {
	l, addr, account := s.limits.logins, clientKey(c), accountKey(email)
	for _, b := range []struct {
		b   *buckets
		key string
	}{{l.pair, pairKey(account, addr)}, {l.account, account}, {l.address, addr}} {
		if b.b != nil {
			b.b.charge(b.key)
		}
	}
}
