package checker

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLimitOutput(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
	}{
		{"short", 64},
		{strings.Repeat("é", 100), 64}, // two-byte runes
		{strings.Repeat("😀", 100), 65}, // four-byte runes, odd limit
		{"bad \xff\xfe bytes" + strings.Repeat("x", 100), 64},
	} {
		got := limitOutput(tc.in, tc.limit)
		if len(got) > tc.limit || !utf8.ValidString(got) {
			t.Errorf("limitOutput(%q, %d) = %q: %d bytes, valid %v", tc.in[:10], tc.limit, got, len(got), utf8.ValidString(got))
		}
		if len(tc.in) > tc.limit && !strings.HasSuffix(got, truncatedMark) {
			t.Errorf("limitOutput cut %q without the mark", got)
		}
		if len(tc.in) <= tc.limit && got != tc.in {
			t.Errorf("limitOutput(%q) = %q, want it unchanged", tc.in, got)
		}
	}
}
