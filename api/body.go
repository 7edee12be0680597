package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"
)

// decode reads a JSON request body into v, answering in the HTTP contract's order:
// 413 for a body over the limit, 415 for another media type, 400 for a
// malformed body. Unknown fields are ignored.
func (s *Server) decode(c echo.Context, v any) error {
	req := c.Request()
	if req.ContentLength > s.cfg.BodyLimit {
		return errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.cfg.BodyLimit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errTooLarge
		}
		return invalid("reading the request body failed")
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errMediaType
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return invalid("malformed JSON body: %v", err)
	}
	if dec.More() {
		return invalid("malformed JSON body: data after the JSON value")
	}
	return nil
}
