package deploy_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/quizstream/quizstream/deploy"
)

func TestInterpolate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SET": "v", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, c := range []struct{ in, want, err string }{
		{in: "a ${SET} b", want: "a v b"},
		{in: "${UNSET}", want: ""},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${EMPTY-d}", want: ""},
		{in: "${SET:?need it}", want: "v"},
		{in: "${EMPTY:?need it}", err: "EMPTY: need it"},
		{in: "${UNSET?gone}", err: "UNSET: gone"},
		{in: "$$HOME ${SET}", want: "$HOME v"},
	} {
		got, err := deploy.Interpolate(c.in, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestDependsOnForms(t *testing.T) {
	t.Parallel()
	var s struct {
		A deploy.DependsOn `yaml:"a"`
		B deploy.DependsOn `yaml:"b"`
	}
	in := "a: [x, y]\nb:\n  x: {condition: service_healthy}\n  y: {}\n"
	if err := yaml.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.A["x"] != "service_started" || s.A["y"] != "service_started" || s.B["x"] != "service_healthy" || s.B["y"] != "service_started" {
		t.Errorf("%v %v", s.A, s.B)
	}
}

func TestRole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"api": "api", "stream apply": "stream apply", "stream apply --force": "stream apply", "dlq list": "dlq list", "": ""} {
		if got := deploy.Role(strings.Fields(in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
