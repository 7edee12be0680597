package checker_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/quizstream/quizstream/checker"
)

// A language map is name=id pairs; empty keeps the defaults (nil); a pair
// without a name or a positive id is refused, quoted.
func TestParseLanguages(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]map[string]int{
		"":                    nil,
		"  ":                  nil,
		"python=71":           {"python": 71},
		" python=71 , go=60 ": {"python": 71, "go": 60},
		"Pascal=67,pascal=68": {"Pascal": 67, "pascal": 68},
	} {
		got, err := checker.ParseLanguages(in)
		if err != nil || !maps.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("ParseLanguages(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"python", "=71", "python=", "python=x", "python=0", "python=-1", "python=71,"} {
		if got, err := checker.ParseLanguages(in); err == nil || got != nil || !strings.Contains(err.Error(), "is not name=id") {
			t.Errorf("ParseLanguages(%q) = %v, %v; want an error", in, got, err)
		}
	}
}
