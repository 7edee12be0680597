package app

import (
	"net/url"
	"strings"
)

// RedactURL hides the password of a connection URL, or of each URL of a
// comma-separated NATS list; a NATS URL's user without a password is a
// token, and hidden too. A string that is no URL but looks as if it
// held a secret (a key=value connection string) is hidden whole.
func RedactURL(raw string) string {
	if strings.Contains(raw, ",") && strings.Contains(raw, "://") {
		parts := strings.Split(raw, ",")
		for i, p := range parts {
			parts[i] = RedactURL(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.Contains(raw, "password") || strings.Contains(raw, "@") {
			return "(redacted)"
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	} else if u.User != nil && natsSchemes[u.Scheme] {
		u.User = url.User("REDACTED")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// natsSchemes are the URL schemes of NATS servers, whose URL may carry a token.
var natsSchemes = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}
