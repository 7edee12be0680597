package api_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// The document is served as it is embedded, as YAML, to anyone.
func TestOpenAPIIsServed(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	r := apptest.Get(t, apptest.Client(in.URL), "/api/v1/openapi.yaml", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(r.Body, api.OpenAPI()) {
		t.Errorf("%d %q, %d bytes; want 200 application/yaml, the %d bytes of api/openapi.yaml",
			r.Status, r.Header.Get("Content-Type"), len(r.Body), len(api.OpenAPI()))
	}
	if !bytes.HasPrefix(r.Body, []byte("openapi: 3.1")) {
		t.Errorf("the document starts %.40q", r.Body)
	}
}
