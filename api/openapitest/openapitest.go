// Package openapitest holds the HTTP API to its OpenAPI document
// (api/openapi.yaml) in tests: a Validator checks one exchange, a request
// and its response, and Transport checks every exchange of a client. The
// handler and end-to-end tests send all their requests through it
// (app/apptest), so that a status, a header or a field the document does
// not name fails them, and so does a request the document refuses that the
// server accepted.
package openapitest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/quizstream/quizstream/api"
)

// Validator checks exchanges with the API against its OpenAPI document.
// It is safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// Load returns the API's document, loaded and validated; it fails when the
// document does not load or is not a valid OpenAPI document.
func Load(ctx context.Context) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("openapi: load: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi: validate: %w", err)
	}
	return doc, nil
}

// New returns a Validator of the API's document, or Load's error.
func New(ctx context.Context) (*Validator, error) {
	doc, err := Load(ctx)
	if err != nil {
		return nil, err
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// framing is the headers any response may carry without the document
// naming them: they belong to HTTP's message framing, not to the API.
var framing = []string{"Content-Type", "Content-Length", "Date", "Connection", "Keep-Alive", "Transfer-Encoding"}

// Check returns how an exchange disagrees with the document, or nil: a
// response whose status, headers or body it does not document, or a
// request it refuses that the server answered below 400. reqBody and
// respBody are the bodies as sent (respBody gzip-compressed when the
// response says so).
func (v *Validator) Check(ctx context.Context, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	if resp.Header.Get("Content-Encoding") == "gzip" && len(respBody) > 0 {
		zr, err := gzip.NewReader(bytes.NewReader(respBody))
		if err != nil {
			return fmt.Errorf("gzip body: %w", err)
		}
		if respBody, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("gzip body: %w", err)
		}
	}
	// The document's server is "/": routes match on the path alone.
	req = req.Clone(ctx)
	req.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	req.Host = ""
	route, params, err := v.router.FindRoute(req)
	var rerr *routers.RouteError
	if errors.As(err, &rerr) {
		return v.unrouted(req, resp, respBody)
	}
	if err != nil {
		return err
	}
	in := &openapi3filter.RequestValidationInput{
		Request: withBody(req, reqBody), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent, SkipSettingDefaults: true},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && !outOfInt64(err) && resp.StatusCode < 400 {
		return fmt.Errorf("the document refuses the request, the server answered %d: %w", resp.StatusCode, err)
	}
	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("status %d is not documented (body %.300q)", resp.StatusCode, respBody)
	}
	doc := ref.Value
	if err := undocumentedHeaders(resp.Header, doc.Headers); err != nil {
		return fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	head := req.Method == http.MethodHead
	if (head || len(doc.Content) == 0) && len(respBody) > 0 {
		return fmt.Errorf("status %d has a body, the document has none: %.300q", resp.StatusCode, respBody)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	// openapi3filter passes every HEAD and 304: their headers are checked
	// as a GET's would be.
	vreq := in
	if head {
		vreq = &openapi3filter.RequestValidationInput{Request: req.Clone(ctx), PathParams: params, Route: route, Options: in.Options}
		vreq.Request.Method = http.MethodGet
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: vreq, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: head},
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	return nil
}

// unrouted checks the answer to a request for a path or method the
// document does not have: the error body of a 404, or of a 405 when the
// path answers another method.
func (v *Validator) unrouted(req *http.Request, resp *http.Response, body []byte) error {
	want, name := http.StatusNotFound, "NotFound"
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r := req.Clone(req.Context())
		r.Method = m
		if _, _, err := v.router.FindRoute(r); err == nil {
			want, name = http.StatusMethodNotAllowed, "MethodNotAllowed"
			break
		}
	}
	if resp.StatusCode != want {
		return fmt.Errorf("the document has no %s %s: answered %d, want %d", req.Method, req.URL.Path, resp.StatusCode, want)
	}
	doc := v.doc.Components.Responses[name].Value
	if err := undocumentedHeaders(resp.Header, doc.Headers); err != nil {
		return fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	if req.Method == http.MethodHead {
		if len(body) > 0 {
			return fmt.Errorf("status %d to a HEAD has a body: %.300q", resp.StatusCode, body)
		}
		return nil
	}
	return validateJSON(doc.Content.Get("application/json").Schema.Value, resp.Header, body)
}

// validateJSON checks a JSON body against schema.
func validateJSON(schema *openapi3.Schema, h http.Header, body []byte) error {
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("body %.300q: %w", body, err)
	}
	if err := schema.VisitJSON(value, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("body %.300q: %w", body, err)
	}
	return nil
}

// undocumentedHeaders returns an error naming the headers of h that are
// neither framing nor in documented.
func undocumentedHeaders(h http.Header, documented openapi3.Headers) error {
	var extra []string
	for name := range h {
		if slices.Contains(framing, name) {
			continue
		}
		if !slices.ContainsFunc(keys(documented), func(d string) bool { return strings.EqualFold(d, name) }) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("undocumented headers %v", extra)
	}
	return nil
}

func keys(h openapi3.Headers) []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// bearerPresent is the document's security as a request can show it: an
// Authorization header with a bearer token. Whether the token is valid is
// the server's to say (401).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, tok, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// outOfInt64 reports whether err is only openapi3filter failing to parse
// an integer parameter into an int64: the document's integers have no such
// bound (a limit above 100 is clamped, however large).
func outOfInt64(err error) bool {
	var perr *openapi3filter.ParseError
	if !errors.As(err, &perr) || !errors.Is(perr.Cause, strconv.ErrRange) {
		return false
	}
	s, _ := perr.Value.(string)
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// withBody returns a copy of req whose body is body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// Transport returns a RoundTripper that sends through next and checks
// every exchange with v, calling report with each disagreement (the
// exchange itself goes on unchanged). Exchanges that fail in transport
// are not checked.
func (v *Validator) Transport(next http.RoundTripper, report func(*http.Request, error)) http.RoundTripper {
	return transport{v: v, next: next, report: report}
}

type transport struct {
	v      *Validator
	next   http.RoundTripper
	report func(*http.Request, error)
}

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		// The client reads the same failure.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		return resp, nil
	}
	if verr := t.v.Check(context.WithoutCancel(req.Context()), req, reqBody, resp, body); verr != nil {
		t.report(req, fmt.Errorf("openapi: %s %s: %w", req.Method, req.URL.RequestURI(), verr))
	}
	return resp, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
