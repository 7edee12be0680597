package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// A number where a whole number goes says which way it is not one; the
// decoder's words ("must be a number, not a number") said nothing.
func TestWholeNumberMessages(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"seq": 1.5}`, `"seq" must be a whole number, not one with a fraction or an exponent`},
		{`{"seq": 1e3}`, `"seq" must be a whole number, not one with a fraction or an exponent`},
		{`{"seq": 99999999999999999999}`, `"seq" must be a whole number, not one too large`},
		{`{"seq": "1"}`, `"seq" must be a whole number, not a string`},
	} {
		var req saveRequest
		err := json.NewDecoder(bytes.NewReader([]byte(tc.body))).Decode(&req)
		if err == nil {
			t.Fatalf("%s decoded", tc.body)
		}
		if got := describeJSONError(err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.body, got, tc.want)
		}
	}
}

// API.md: limit defaults to 20, is at most 100 ("a larger value is
// clamped"), and below 1 is 400; a value too large for an int is larger.
func TestPageLimit(t *testing.T) {
	for v, want := range map[string]int{"1": 1, "20": 20, "100": 100, "101": 100, "99999999999999999999": 100, "9223372036854775808": 100} {
		if n, err := pageLimit(v); err != nil || n != want {
			t.Errorf("limit=%s: %d, %v; want %d", v, n, err, want)
		}
	}
	for _, v := range []string{"0", "-1", "-99999999999999999999", "x", "1.5", ""} {
		if n, err := pageLimit(v); err == nil || !strings.Contains(err.Error(), "invalid_request") {
			t.Errorf("limit=%q: %d, %v; want invalid_request", v, n, err)
		}
	}
}
