package checker

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLanguages reads a language map as operators write it: name=id
// pairs, comma-separated (python=71,go=60). Empty (or blank) is nil, which
// Config.Languages takes as DefaultLanguages(). It returns an error quoting
// the first pair that is not a name and a positive id.
func ParseLanguages(v string) (map[string]int, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	m := map[string]int{}
	for _, p := range strings.Split(v, ",") {
		name, id, ok := strings.Cut(strings.TrimSpace(p), "=")
		n, err := strconv.Atoi(id)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not name=id (python=71)", p)
		}
		m[name] = n
	}
	return m, nil
}
