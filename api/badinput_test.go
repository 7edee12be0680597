package api_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// Bad input of every kind gets a clear 4xx in the HTTP contract's error shape, in
// the HTTP contract's order of precedence, and publishes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	a := s.StartAPI(t, api.Config{})
	clients, _ := apptest.SignupMany(t, a.URL, "bad", 1)
	c := clients[0]
	// bare sends no Content-Type, which Do adds to every body.
	bare := client.New(a.URL, client.Options{HTTPClient: &http.Client{Transport: noContentType{apptest.Validating(http.DefaultTransport)}}})
	q0, q1 := s.Quizzes[0], s.Quizzes[1]
	attempts := func(quiz string) string { return "/api/v1/quizzes/" + quiz + "/attempts" }
	q0path := attempts(q0.ID.String())

	// A key of exactly 128 characters is valid; reusing it is what 422 is for.
	takenKey := strings.Repeat("k", 128)
	if _, err := apptest.Submit(t.Context(), c, q0.ID.String(), takenKey, apptest.AnswersFor(q0, 3)); err != nil {
		t.Fatalf("submit with a 128-character key: %v", err)
	}
	const seeded = 1
	if n := eventstest.StreamMessages(t, s.JS, s.Stream.Name); n != seeded {
		t.Fatalf("stream holds %d messages, want %d", n, seeded)
	}

	body := func(v any) []byte { return apptest.MustJSON(t, v) }
	ans := func(pairs ...string) map[string]any {
		list := []map[string]string{}
		for i := 0; i+1 < len(pairs); i += 2 {
			list = append(list, map[string]string{"question_id": pairs[i], "choice_id": pairs[i+1]})
		}
		return map[string]any{"answers": list}
	}
	qu := func(q store.Quiz, i int) string { return q.Questions[i].ID.String() }
	ch := func(q store.Quiz, i, j int) string { return q.Questions[i].Choices[j].ID.String() }
	valid := body(ans(qu(q0, 0), ch(q0, 0, 0)))
	oversized := body(map[string]any{"answers": []any{}, "padding": strings.Repeat("x", 65<<10)})
	malformed := []byte(`{"answers": [`)
	longKey := strings.Repeat("k", 129)
	unknownQuiz := attempts(uuid.NewString())
	bogusToken := base64.RawURLEncoding.EncodeToString(make([]byte, 32)) // well formed, never issued

	type tc struct {
		name         string
		method, path string
		token        string // "": the student's; "-": none; else sent as is
		ctype        string // "": application/json; "-": none
		key          string
		body         []byte
		chunked      bool // send the body without a Content-Length
		status       int
		code         string
	}
	cases := []tc{
		{name: "no token", path: q0path, token: "-", body: valid, status: 401, code: "unauthorized"},
		{name: "token never issued", path: q0path, token: "Bearer " + bogusToken, body: valid, status: 401, code: "unauthorized"},
		{name: "token malformed", path: q0path, token: "Bearer abc", body: valid, status: 401, code: "unauthorized"},
		{name: "token in another scheme", path: q0path, token: "Basic " + c.Token(), body: valid, status: 401, code: "unauthorized"},
		{name: "body over 64 KiB", path: q0path, body: oversized, status: 413, code: "payload_too_large"},
		{name: "body over 64 KiB, chunked", path: q0path, body: oversized, chunked: true, status: 413, code: "payload_too_large"},
		{name: "Content-Type text/plain", path: q0path, ctype: "text/plain", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "Content-Type form", path: q0path, ctype: "application/x-www-form-urlencoded", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "no Content-Type", path: q0path, ctype: "-", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "malformed JSON", path: q0path, body: malformed, status: 400, code: "invalid_request"},
		{name: "empty body", path: q0path, ctype: "application/json", body: nil, status: 400, code: "invalid_request"},
		{name: "JSON then garbage", path: q0path, body: append(slices.Clone(valid), "x"...), status: 400, code: "invalid_request"},
		{name: "answers missing", path: q0path, body: []byte(`{}`), status: 400, code: "invalid_request"},
		{name: "answers null", path: q0path, body: []byte(`{"answers": null}`), status: 400, code: "invalid_request"},
		{name: "answers an object", path: q0path, body: []byte(`{"answers": {}}`), status: 400, code: "invalid_request"},
		{name: "answers a string", path: q0path, body: []byte(`{"answers": "all of them"}`), status: 400, code: "invalid_request"},
		{name: "body a list", path: q0path, body: []byte(`[]`), status: 400, code: "invalid_request"},
		{name: "answer ids not strings", path: q0path, body: []byte(`{"answers": [{"question_id": 1, "choice_id": 2}]}`), status: 400, code: "invalid_request"},
		{name: "unknown quiz", path: unknownQuiz, body: valid, status: 404, code: "not_found"},
		{name: "quiz id not a UUID", path: attempts("quiz-1"), body: valid, status: 404, code: "not_found"},
		{name: "unknown question", path: q0path, body: body(ans(uuid.NewString(), ch(q0, 0, 0))), status: 400, code: "invalid_request"},
		{name: "question of another quiz", path: q0path, body: body(ans(qu(q1, 0), ch(q1, 0, 0))), status: 400, code: "invalid_request"},
		{name: "unknown choice", path: q0path, body: body(ans(qu(q0, 0), uuid.NewString())), status: 400, code: "invalid_request"},
		{name: "choice of another question", path: q0path, body: body(ans(qu(q0, 0), ch(q0, 1, 0))), status: 400, code: "invalid_request"},
		{name: "question answered twice", path: q0path, body: body(ans(qu(q0, 0), ch(q0, 0, 0), qu(q0, 0), ch(q0, 0, 1))), status: 400, code: "invalid_request"},
		{name: "question answered twice alike", path: q0path, body: body(ans(qu(q0, 2), ch(q0, 2, 1), qu(q0, 2), ch(q0, 2, 1))), status: 400, code: "invalid_request"},
		{name: "Idempotency-Key over 128 characters", path: q0path, key: longKey, body: valid, status: 400, code: "invalid_request"},
		{name: "Idempotency-Key not UTF-8", path: q0path, key: "k\xff\xfe", body: valid, status: 400, code: "invalid_request"},
		{name: "Idempotency-Key reused", path: q0path, key: takenKey, body: valid, status: 422, code: "idempotency_key_reused"},
		{name: "Idempotency-Key reused on another quiz", path: attempts(q1.ID.String()), key: takenKey, body: body(ans(qu(q1, 0), ch(q1, 0, 0))), status: 422, code: "idempotency_key_reused"},
		{name: "unknown path", method: "GET", path: "/api/v1/nothing-here", status: 404, code: "not_found"},
		{name: "unknown path, no token", method: "GET", path: "/api/v1/nothing-here", token: "-", status: 404, code: "not_found"},
		{name: "unknown path outside the API", method: "GET", path: "/nothing-here", status: 404, code: "not_found"},
		{name: "unknown path under attempts", path: q0path + "/extra", body: valid, status: 404, code: "not_found"},
		{name: "GET on the attempts POST", method: "GET", path: q0path, status: 405, code: "method_not_allowed"},
		{name: "PUT on the attempts POST", method: "PUT", path: q0path, body: valid, status: 405, code: "method_not_allowed"},
		{name: "DELETE on courses", method: "DELETE", path: "/api/v1/courses", status: 405, code: "method_not_allowed"},
		{name: "GET on signup", method: "GET", path: "/api/v1/signup", status: 405, code: "method_not_allowed"},
		{name: "POST on progress", path: "/api/v1/student-progress", body: valid, status: 405, code: "method_not_allowed"},
		{name: "signup, malformed", path: "/api/v1/signup", token: "-", body: malformed, status: 400, code: "invalid_request"},
		{name: "signup, wrong type", path: "/api/v1/signup", token: "-", ctype: "text/plain", body: []byte(`{}`), status: 415, code: "unsupported_media_type"},
		{name: "signup, oversized", path: "/api/v1/signup", token: "-", body: oversized, status: 413, code: "payload_too_large"},
		{name: "login, malformed", path: "/api/v1/login", token: "-", body: malformed, status: 400, code: "invalid_request"},

		// Precedence: 401, 413, 415, 400 (malformed), 404, 400 (invalid content), 422.
		{name: "no token + oversized", path: q0path, token: "-", body: oversized, status: 401, code: "unauthorized"},
		{name: "no token + wrong type + malformed", path: unknownQuiz, token: "-", ctype: "text/plain", body: malformed, status: 401, code: "unauthorized"},
		{name: "oversized + wrong type", path: q0path, ctype: "text/plain", body: oversized, status: 413, code: "payload_too_large"},
		{name: "oversized, chunked + wrong type", path: q0path, ctype: "text/plain", body: oversized, chunked: true, status: 413, code: "payload_too_large"},
		{name: "oversized + unknown quiz", path: unknownQuiz, body: oversized, status: 413, code: "payload_too_large"},
		{name: "wrong type + malformed", path: q0path, ctype: "text/plain", body: malformed, status: 415, code: "unsupported_media_type"},
		{name: "wrong type + unknown quiz", path: unknownQuiz, ctype: "text/plain", body: valid, status: 415, code: "unsupported_media_type"},
		{name: "malformed + unknown quiz", path: unknownQuiz, body: malformed, status: 400, code: "invalid_request"},
		{name: "malformed + quiz id not a UUID", path: attempts("quiz-1"), body: malformed, status: 400, code: "invalid_request"},
		{name: "answers missing + unknown quiz", path: unknownQuiz, body: []byte(`{}`), status: 400, code: "invalid_request"},
		{name: "unknown quiz + unknown question", path: unknownQuiz, body: body(ans(uuid.NewString(), uuid.NewString())), status: 404, code: "not_found"},
		{name: "unknown quiz + key over 128", path: unknownQuiz, key: longKey, body: valid, status: 404, code: "not_found"},
		{name: "unknown quiz + key reused", path: unknownQuiz, key: takenKey, body: valid, status: 404, code: "not_found"},
		{name: "unknown question + key reused", path: q0path, key: takenKey, body: body(ans(uuid.NewString(), ch(q0, 0, 0))), status: 400, code: "invalid_request"},
		{name: "answered twice + key reused", path: q0path, key: takenKey, body: body(ans(qu(q0, 0), ch(q0, 0, 0), qu(q0, 0), ch(q0, 0, 1))), status: 400, code: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "POST"
			}
			// Do sends the client's token, and Content-Type:
			// application/json with a body, unless the header says otherwise.
			sender, h := c, http.Header{}
			switch tc.token {
			case "":
			case "-":
				sender = c.WithToken("")
			default:
				h.Set("Authorization", tc.token)
			}
			switch tc.ctype {
			case "":
			case "-":
				sender = bare.WithToken(sender.Token())
			default:
				h.Set("Content-Type", tc.ctype)
			}
			if tc.key != "" {
				h.Set("Idempotency-Key", tc.key)
			}
			var rd io.Reader
			if tc.body != nil {
				rd = bytes.NewReader(tc.body)
				if tc.chunked {
					rd = io.MultiReader(rd) // hides the length: sent chunked
				}
			}
			before := eventstest.StreamMessages(t, s.JS, s.Stream.Name)
			r := apptest.Do(t, sender, method, tc.path, h, rd)
			apptest.CheckError(t, method+" "+tc.path, r, tc.status, tc.code)
			if after := eventstest.StreamMessages(t, s.JS, s.Stream.Name); after != before {
				t.Errorf("the stream went from %d to %d messages", before, after)
			}
		})
	}
	if n := eventstest.StreamMessages(t, s.JS, s.Stream.Name); n != seeded {
		t.Errorf("stream holds %d messages after the bad inputs, want %d", n, seeded)
	}
}
