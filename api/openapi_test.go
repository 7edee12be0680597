package api

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// Every route of the Echo router is in api/openapi.yaml with its method,
// and every operation there has a route: neither can be added alone.
func TestOpenAPIHasEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.DiscardHandler), cfg: Config{AccessLogLevel: slog.LevelDebug, AccessLogSample: 1, WriteTimeout: DefaultWriteTimeout}}
	var routed []string
	for _, r := range s.routes().Routes() {
		routed = append(routed, r.Method+" "+echoToOpenAPI(r.Path))
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routed)
	slices.Sort(documented)
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in api/openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("api/openapi.yaml has %s, the router does not", d)
		}
	}
	if len(routed) < 20 {
		t.Errorf("only %d routes found: %v", len(routed), routed)
	}
	// Every GET route answers HEAD.
	for _, r := range routed {
		if m, p, _ := strings.Cut(r, " "); m == http.MethodGet && !slices.Contains(routed, http.MethodHead+" "+p) {
			t.Errorf("%s has no HEAD twin", r)
		}
	}
}

// echoToOpenAPI writes an Echo path's :params as OpenAPI's {params}.
func echoToOpenAPI(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}
