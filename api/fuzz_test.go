package api

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

// Fuzz targets of the attempt POST's pure parts: the body decoder and the
// validation that follows it, grading, and the paging cursor. Each runs
// its seeds (testdata/fuzz/<name> and the f.Add lines) in every `go test`;
// `go test -run '^$' -fuzz '^FuzzGrade$' -fuzztime 10s ./api` searches.

// fuzzLimit is a small body limit, so that the fuzzer reaches it.
const fuzzLimit = 2 << 10

// fuzzQuiz is the answer key fuzzing grades against: 4 questions of 3
// choices, one of them correct.
func fuzzQuiz(f *testing.F) (*quizKey, store.Quiz) {
	courses := store.DemoContent(store.DemoSize{Courses: 1, Quizzes: 1, Questions: 4, Choices: 3})
	snap, err := buildSnapshot(courses)
	if err != nil {
		f.Fatal(err)
	}
	q := courses[0].Quizzes[0]
	return snap.quizzes[q.ID], q
}

// referenceGrade is grading as the HTTP contract states it, written
// independently: every question at most once, every id one of the quiz's,
// one point per correct choice.
func referenceGrade(q store.Quiz, answers []events.Answer) (int, bool) {
	seen := map[string]bool{}
	score := 0
	for _, a := range answers {
		qi := slices.IndexFunc(q.Questions, func(qu store.Question) bool { return qu.ID.String() == a.QuestionID })
		if qi < 0 || seen[a.QuestionID] {
			return 0, false
		}
		seen[a.QuestionID] = true
		ci := slices.IndexFunc(q.Questions[qi].Choices, func(c store.Choice) bool { return c.ID.String() == a.ChoiceID })
		if ci < 0 {
			return 0, false
		}
		if q.Questions[qi].Choices[ci].Correct {
			score++
		}
	}
	return score, true
}

// checkGrade fails t unless grade agrees with the reference, in any order
// of the answers.
func checkGrade(t *testing.T, key *quizKey, q store.Quiz, answers []events.Answer) {
	t.Helper()
	want, ok := referenceGrade(q, answers)
	for _, order := range [][]events.Answer{answers, reversed(answers)} {
		score, err := grade(key, order)
		if ok != (err == nil) {
			t.Fatalf("grade(%+v) error %v, want valid %t", order, err, ok)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
				t.Fatalf("grade refused with %v, want a 400", err)
			}
			continue
		}
		if score != want || score < 0 || score > len(key.choices) {
			t.Fatalf("grade(%+v) = %d, want %d of %d", order, score, want, len(key.choices))
		}
	}
}

func reversed(a []events.Answer) []events.Answer {
	r := slices.Clone(a)
	slices.Reverse(r)
	return r
}

// The attempt body, whatever its bytes and Content-Type: decode answers
// the contract's 413, 415 or 400 (with a message in JSON's terms, naming
// no Go type) or accepts it; an accepted body without answers is a 400;
// accepted answers are graded as the contract says.
func FuzzDecodeAttemptRequest(f *testing.F) {
	key, q := fuzzQuiz(f)
	qu := q.Questions[0]
	valid := `{"answers":[{"question_id":"` + qu.ID.String() + `","choice_id":"` + qu.Choices[0].ID.String() + `"}]}`
	for _, body := range []string{valid, `{"answers":[]}`, `{}`, `{"answers":null}`, `{"answers":[{"question_id":1}]}`,
		`[]`, `{"answers":[]} {}`, ``, `{"answers":[{"question_id":"x","choice_id":"y","extra":true}]}`, `{"answers":"all"}`} {
		f.Add([]byte(body), "application/json")
	}
	f.Add([]byte(valid), "application/json; charset=utf-8")
	f.Add([]byte(valid), "text/plain")
	f.Add([]byte(valid), "")
	f.Add(bytes.Repeat([]byte(" "), fuzzLimit+1), "application/json")
	s := &Server{cfg: Config{BodyLimit: fuzzLimit}}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/quizzes/x/attempts", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		c := e.NewContext(req, httptest.NewRecorder())
		var sr submitRequest
		err := s.decode(c, &sr)
		mt, _, mtErr := mime.ParseMediaType(contentType)
		json := mtErr == nil && mt == "application/json"
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("decode error %v is not an *Error", err)
			}
			switch ae.Status {
			case http.StatusRequestEntityTooLarge:
				if len(body) <= fuzzLimit {
					t.Fatalf("413 for %d bytes", len(body))
				}
			case http.StatusUnsupportedMediaType:
				if json {
					t.Fatalf("415 for Content-Type %q", contentType)
				}
			case http.StatusBadRequest:
				for _, goName := range []string{"Go ", "submitRequest", "events.", "struct", "[]", "*"} {
					if strings.Contains(ae.Message, goName) {
						t.Fatalf("400 message names Go's %q: %s", goName, ae.Message)
					}
				}
			default:
				t.Fatalf("decode answered %d", ae.Status)
			}
			return
		}
		if len(body) > fuzzLimit || !json {
			t.Fatalf("accepted %d bytes of %q", len(body), contentType)
		}
		if sr.Answers == nil {
			return // the handler's 400: answers is required
		}
		checkGrade(t, key, q, *sr.Answers)
	})
}

// Grading, on answers made of the quiz's own ids (each byte pair picks a
// question and a choice, or another id, in whatever case).
func FuzzGrade(f *testing.F) {
	key, q := fuzzQuiz(f)
	f.Add([]byte{0, 0, 1, 1, 2, 2, 3, 0})
	f.Add([]byte{0, 0, 0, 1})
	f.Add([]byte{4, 0})
	f.Add([]byte{0, 3})
	f.Add([]byte{0x80, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var answers []events.Answer
		for i := 0; i+1 < len(data); i += 2 {
			qb, cb := data[i], data[i+1]
			var a events.Answer
			qi := int(qb&0x7f) % (len(q.Questions) + 1)
			if qi == len(q.Questions) {
				a.QuestionID = uuid.NewSHA1(uuid.Nil, []byte{qb}).String()
			} else {
				a.QuestionID = q.Questions[qi].ID.String()
				choices := q.Questions[qi].Choices
				if ci := int(cb&0x7f) % (len(choices) + 1); ci < len(choices) {
					a.ChoiceID = choices[ci].ID.String()
				} else {
					a.ChoiceID = uuid.NewSHA1(uuid.Nil, []byte{cb}).String()
				}
			}
			if qb&0x80 != 0 {
				a.QuestionID = strings.ToUpper(a.QuestionID) // the same id, other case
			}
			answers = append(answers, a)
		}
		checkGrade(t, key, q, answers)
	})
}

// Any string a client sends as a cursor is refused or decodes to a cursor
// that encodes to the one canonical string of it, which decodes again to
// the same cursor.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(store.Cursor{SubmittedAt: time.Date(2026, 11, 26, 9, 30, 0, 123456000, time.UTC), ID: uuid.MustParse("6f1f6a3e-8c1d-4a53-9a61-0b1f3c0e2d11")}))
	f.Add("garbage!")
	f.Add("MTIuNmYxZjZhM2UtOGMxZC00YTUzLTlhNjEtMGIxZjNjMGUyZDEx")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		cur, err := decodeCursor(s)
		if err != nil {
			return
		}
		canonical := encodeCursor(cur)
		again, err := decodeCursor(canonical)
		if err != nil {
			t.Fatalf("decodeCursor(%q) = %+v, which encodes to %q, which does not decode: %v", s, cur, canonical, err)
		}
		if !again.SubmittedAt.Equal(cur.SubmittedAt) || again.ID != cur.ID {
			t.Fatalf("cursor %q: %+v, then %+v", s, cur, again)
		}
		if encodeCursor(again) != canonical {
			t.Fatalf("cursor %q has two encodings", s)
		}
	})
}

// Every cursor the API issues (a stored attempt's time, in microseconds,
// and id) decodes to itself.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(time.Date(2026, 11, 26, 9, 30, 0, 123456000, time.UTC).UnixMicro(), []byte("0123456789abcdef"))
	f.Add(int64(0), []byte{})
	f.Add(int64(-1), []byte{0xff})
	f.Fuzz(func(t *testing.T, micros int64, id []byte) {
		var u uuid.UUID
		copy(u[:], id)
		in := store.Cursor{SubmittedAt: time.UnixMicro(micros).UTC(), ID: u}
		s := encodeCursor(in)
		out, err := decodeCursor(s)
		if err != nil {
			t.Fatalf("decodeCursor(encodeCursor(%+v)): %v", in, err)
		}
		if !out.SubmittedAt.Equal(in.SubmittedAt) || out.ID != in.ID {
			t.Fatalf("round trip: %+v, want %+v", out, in)
		}
	})
}

// The body decoder parses with github.com/segmentio/encoding first and
// with encoding/json only what that refuses: for any body, into each
// request type, it must accept what encoding/json's decoder alone accepts,
// to the same value (what it refuses, encoding/json words), except that a
// body that is not valid UTF-8 is refused (encoding/json reads its bytes
// as U+FFFD).
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, body := range []string{`{"answers":[{"question_id":"q","choice_id":"c"}]}`, `{"answers":[]} ]`,
		`{"Answers":[{"QUESTION_ID":"q\u00e9","choice_id":"c","choice_id":"d"}]}`, "{\"answers\":[{\"question_id\":\"\xff\"}]}",
		`{"email":"a@example.com","name":"A","password":"pw"}`, `{"email":null,"password":1}`,
		`{"choice_id":"c","seq":3}`, `{"choice_id": null ,"seq":3.0}`, `{"choice_id":[1, {"a" :2}],"seq":-0}`, `{"seq":1e3}`} {
		for kind := range byte(4) {
			f.Add([]byte(body), kind)
		}
	}
	s := &Server{cfg: Config{BodyLimit: fuzzLimit}}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte, kind byte) {
		if len(body) > fuzzLimit {
			return // a 413 before any parsing
		}
		var got, want any
		switch kind % 4 {
		case 0:
			got, want = &submitRequest{}, &submitRequest{}
		case 1:
			got, want = &signupRequest{}, &signupRequest{}
		case 2:
			got, want = &loginRequest{}, &loginRequest{}
		default:
			got, want = &saveRequest{}, &saveRequest{}
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		err := s.decode(e.NewContext(req, httptest.NewRecorder()), got)
		dec := stdjson.NewDecoder(bytes.NewReader(body))
		wantErr := dec.Decode(want)
		if wantErr == nil && dec.More() {
			wantErr = errors.New("data after the value")
		}
		if !utf8.Valid(body) {
			wantErr = errors.New("not UTF-8")
		}
		switch {
		case (err == nil) != (wantErr == nil):
			t.Fatalf("decode: %v; encoding/json: %v\n%q", err, wantErr, body)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("decode: %+v; encoding/json: %+v\n%q", got, want, body)
		}
	})
}
