package openapitest_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quizstream/quizstream/api/openapitest"
)

func TestDocumentLoadsAndValidates(t *testing.T) {
	doc, err := openapitest.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
}

const (
	id      = "0b6c8c3e-4f5e-4a57-9b1e-0d7a2f0c9a11"
	attempt = `{"attempt_id":"` + id + `","quiz_id":"` + id + `","student_id":"` + id + `","score":1,"max_score":3,"status":"accepted","submitted_at":"2026-12-06T01:02:03.456789Z"}`
	token   = "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

// The validator passes what the document says and fails each kind of
// disagreement: a test of the tests, since a validator that passes
// everything would make every other check of the document vacuous.
func TestValidatorFindsDisagreements(t *testing.T) {
	v, err := openapitest.New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	submit := "/api/v1/quizzes/" + id + "/attempts"
	good := `{"answers":[{"question_id":"` + id + `","choice_id":"` + id + `"}]}`
	jsonH := http.Header{"Content-Type": {"application/json"}}
	with := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	gz := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		io.WriteString(zw, s)
		zw.Close()
		return b.String()
	}
	errBody := func(code string) string { return `{"error":{"code":"` + code + `","message":"m"}}` }
	course := `{"courses":[{"id":"` + id + `","slug":"s","title":"t","quiz_ids":[]}]}`
	contentH := with(jsonH, "ETag", `"abc"`, "Cache-Control", "public, max-age=60", "Vary", "Accept-Encoding")
	for _, tc := range []struct {
		name               string
		method, path, body string
		reqHeader          http.Header
		status             int
		respHeader         http.Header
		respBody           string
		wantErr            string // "" for none
	}{
		{"an attempt", "POST", submit, good, with(jsonH, "Authorization", token), 202,
			with(jsonH, "Cache-Control", "no-store", "Quizstream-Position", "7"), attempt, ""},
		{"an undocumented field", "POST", submit, good, with(jsonH, "Authorization", token), 202,
			with(jsonH, "Cache-Control", "no-store"), strings.Replace(attempt, `{`, `{"extra":1,`, 1), "extra"},
		{"a missing field", "POST", submit, good, with(jsonH, "Authorization", token), 202,
			with(jsonH, "Cache-Control", "no-store"), strings.Replace(attempt, `"score":1,`, ``, 1), "score"},
		{"an undocumented status", "POST", submit, good, with(jsonH, "Authorization", token), 418,
			jsonH, errBody("internal"), "status 418 is not documented"},
		{"an undocumented header", "POST", submit, good, with(jsonH, "Authorization", token), 202,
			with(jsonH, "Cache-Control", "no-store", "X-Debug", "1"), attempt, "X-Debug"},
		{"no no-store", "POST", submit, good, with(jsonH, "Authorization", token), 202,
			jsonH, attempt, "Cache-Control"},
		{"the wrong error code", "POST", submit, good, with(jsonH, "Authorization", token), 404,
			jsonH, errBody("conflict"), "not_found"},
		{"a request the document refuses, accepted", "POST", submit, `{"answer":[]}`, with(jsonH, "Authorization", token), 202,
			with(jsonH, "Cache-Control", "no-store"), attempt, "refuses the request"},
		{"a request the document refuses, refused", "POST", submit, `{"answer":[]}`, with(jsonH, "Authorization", token), 400,
			jsonH, errBody("invalid_request"), ""},
		{"no token, 401", "POST", submit, good, jsonH, 401,
			with(jsonH, "WWW-Authenticate", "Bearer"), errBody("unauthorized"), ""},
		{"a 401 without WWW-Authenticate", "POST", submit, good, jsonH, 401,
			jsonH, errBody("unauthorized"), "WWW-Authenticate"},
		{"a 503 without Retry-After", "POST", submit, good, with(jsonH, "Authorization", token), 503,
			jsonH, errBody("unavailable"), "Retry-After"},
		{"a huge limit", "GET", "/api/v1/attempts?limit=99999999999999999999", "", http.Header{"Authorization": {token}}, 200,
			with(jsonH, "Cache-Control", "no-store"), `{"attempts":[],"next_cursor":null}`, ""},
		{"limit 0, accepted", "GET", "/api/v1/attempts?limit=0", "", http.Header{"Authorization": {token}}, 200,
			with(jsonH, "Cache-Control", "no-store"), `{"attempts":[],"next_cursor":null}`, "refuses the request"},
		{"courses", "GET", "/api/v1/courses", "", nil, 200, contentH, course, ""},
		{"courses, gzip", "GET", "/api/v1/courses", "", http.Header{"Accept-Encoding": {"gzip"}}, 200,
			with(contentH, "Content-Encoding", "gzip"), gz(course), ""},
		{"courses, gzip, an undocumented field", "GET", "/api/v1/courses", "", http.Header{"Accept-Encoding": {"gzip"}}, 200,
			with(contentH, "Content-Encoding", "gzip"), gz(strings.Replace(course, `"slug"`, `"x":1,"slug"`, 1)), "x"},
		{"HEAD courses", "HEAD", "/api/v1/courses", "", nil, 200, contentH, "", ""},
		{"HEAD courses without an ETag", "HEAD", "/api/v1/courses", "", nil, 200,
			with(jsonH, "Cache-Control", "public, max-age=60", "Vary", "Accept-Encoding"), "", "ETag"},
		{"304", "GET", "/api/v1/courses", "", http.Header{"If-None-Match": {`"abc"`}}, 304,
			with(http.Header{}, "ETag", `"abc"`, "Cache-Control", "public, max-age=60", "Vary", "Accept-Encoding"), "", ""},
		{"a 204 with a body", "POST", "/api/v1/logout", "", http.Header{"Authorization": {token}}, 204,
			with(http.Header{}, "Cache-Control", "no-store"), "{}", "has a body"},
		{"an unknown path", "GET", "/api/v2/nothing", "", nil, 404, jsonH, errBody("not_found"), ""},
		{"an unknown path, plain text", "GET", "/api/v2/nothing", "", nil, 404,
			http.Header{"Content-Type": {"text/plain"}}, "404 page not found", "Content-Type"},
		{"an unknown method", "DELETE", "/api/v1/courses", "", nil, 405,
			with(jsonH, "Allow", "GET, HEAD"), errBody("method_not_allowed"), ""},
		{"an unknown method, 404", "DELETE", "/api/v1/courses", "", nil, 404, jsonH, errBody("not_found"), "want 405"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			for k, vs := range tc.reqHeader {
				req.Header[k] = vs
			}
			resp := &http.Response{StatusCode: tc.status, Header: tc.respHeader}
			if resp.Header == nil {
				resp.Header = http.Header{}
			}
			err := v.Check(t.Context(), req, []byte(tc.body), resp, []byte(tc.respBody))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("got no error, want one about %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("got %v, want one about %q", err, tc.wantErr)
			}
		})
	}
}
