package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	segjson "github.com/segmentio/encoding/json"
)

// decode reads a JSON request body into v, answering in the HTTP contract's order:
// 413 for a body over the limit, 415 for another media type, 400 for a
// malformed body (408 for one that did not arrive within ReadTimeout).
// Unknown fields are ignored.
func (s *Server) decode(c echo.Context, v any) error { return s.decodeLimited(c, v, s.cfg.BodyLimit) }

// decodeLimited is decode with a body limit of its own.
func (s *Server) decodeLimited(c echo.Context, v any, limit int64) error {
	req := c.Request()
	if req.ContentLength > limit {
		return errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return errTooLarge
		case errors.Is(err, os.ErrDeadlineExceeded):
			return errReadTimeout
		}
		return invalid("reading the request body failed")
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errMediaType
	}
	// Both parsers would read invalid UTF-8 as U+FFFD, so that different
	// bytes (two passwords, two emails) became the same string.
	if !utf8.Valid(body) {
		return invalid("malformed JSON body: not valid UTF-8")
	}
	// The fast parser accepts what encoding/json accepts, to the same
	// values (FuzzDecodeMatchesEncodingJSON); what it refuses goes to
	// encoding/json, which decides it and words the error.
	if segjson.Unmarshal(body, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return invalid("malformed JSON body: %s", describeJSONError(err))
	}
	if dec.More() {
		return invalid("malformed JSON body: data after the JSON value")
	}
	return nil
}

// describeJSONError says what is wrong with a body in JSON's terms: the
// decoder's own messages name Go types ("Go struct field
// signupRequest.email of type string"), which are no client's business.
func describeJSONError(err error) string {
	var (
		syntax   *json.SyntaxError
		mismatch *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of a value"
	case errors.As(err, &syntax):
		return syntaxMessage(syntax.Error()) + " (at byte " + strconv.FormatInt(syntax.Offset, 10) + ")"
	case errors.As(err, &mismatch):
		got, num, _ := strings.Cut(mismatch.Value, " ") // "number -5" is a number
		want, what := jsonKind(mismatch.Type), article(got)
		if got == "number" && want == "a whole number" {
			// A number where a whole number goes: say which way it is not one.
			what = "one too large"
			if strings.ContainsAny(num, ".eE") {
				what = "one with a fraction or an exponent"
			}
		}
		if mismatch.Field == "" {
			return "the body must be " + want + ", not " + what
		}
		return `"` + mismatch.Field + `" must be ` + want + ", not " + what
	}
	return "not valid JSON"
}

// syntaxMessage is the decoder's syntax error with the character it
// quotes written as a code point ("invalid character U+0027 after object
// key"): the body's own bytes are not echoed back.
func syntaxMessage(msg string) string {
	const prefix = "invalid character '"
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return msg
	}
	// The character is a Go rune literal: 'x', '\'', '\x00'.
	for i := 1; i < len(rest); i++ {
		if rest[i] != '\'' {
			continue
		}
		if s, err := strconv.Unquote("'" + rest[:i] + "'"); err == nil {
			r := []rune(s)[0]
			return fmt.Sprintf("invalid character U+%04X%s", r, rest[i+1:])
		}
	}
	return "invalid character"
}

// jsonKind names what JSON value decodes into t.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another kind of value"
}

// article puts "a" or "an" before a JSON kind as the decoder names it.
func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "true or false"
	case "":
		return "that"
	}
	return "a " + kind
}
