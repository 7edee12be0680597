package api

import (
	"bytes"
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// spec is the OpenAPI 3.1 document of the HTTP API.
//
//go:embed openapi.yaml
var spec []byte

// OpenAPI returns the OpenAPI 3.1 document of the HTTP API (api/openapi.yaml),
// as GET /api/v1/openapi.yaml serves it. It cannot fail.
func OpenAPI() []byte { return bytes.Clone(spec) }

// serveSpec answers the OpenAPI document (RFC 9512's media type).
func serveSpec(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", spec)
}
