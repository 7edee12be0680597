package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

func testQuiz(t *testing.T) (*quizKey, store.Quiz) {
	t.Helper()
	courses := store.DemoContent(store.DemoSize{Courses: 1, Quizzes: 1, Questions: 3, Choices: 4})
	snap, err := buildSnapshot(courses)
	if err != nil {
		t.Fatal(err)
	}
	q := courses[0].Quizzes[0]
	return snap.quizzes[q.ID], q
}

func answer(q store.Question, correct bool) events.Answer {
	for _, c := range q.Choices {
		if c.Correct == correct {
			return events.Answer{QuestionID: q.ID.String(), ChoiceID: c.ID.String()}
		}
	}
	panic("no such choice")
}

func TestGrade(t *testing.T) {
	key, q := testQuiz(t)
	qs := q.Questions
	for name, tc := range map[string]struct {
		answers []events.Answer
		score   int
	}{
		"empty list":        {nil, 0},
		"all correct":       {[]events.Answer{answer(qs[0], true), answer(qs[1], true), answer(qs[2], true)}, 3},
		"all wrong":         {[]events.Answer{answer(qs[0], false), answer(qs[1], false), answer(qs[2], false)}, 0},
		"partial, in order": {[]events.Answer{answer(qs[2], true), answer(qs[0], false)}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			score, err := grade(key, tc.answers)
			if err != nil || score != tc.score {
				t.Fatalf("grade = %d, %v; want %d", score, err, tc.score)
			}
		})
	}
	if len(key.choices) != 3 {
		t.Fatalf("max score = %d, want the question count 3", len(key.choices))
	}

	otherQuestion := answer(qs[1], true)
	otherQuestion.QuestionID = qs[0].ID.String() // a choice of another question
	for name, answers := range map[string][]events.Answer{
		"unknown question":        {{QuestionID: uuid.NewString(), ChoiceID: qs[0].Choices[0].ID.String()}},
		"unknown choice":          {{QuestionID: qs[0].ID.String(), ChoiceID: uuid.NewString()}},
		"choice of another":       {otherQuestion},
		"question answered twice": {answer(qs[0], true), answer(qs[0], false)},
		"not a uuid":              {{QuestionID: "q", ChoiceID: "c"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := grade(key, answers)
			var apiErr *Error
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Code != "invalid_request" {
				t.Fatalf("grade = %v, want 400 invalid_request", err)
			}
		})
	}
}

func TestSnapshotHidesAnswers(t *testing.T) {
	key, _ := testQuiz(t)
	for _, word := range []string{"correct", "true", "false"} {
		if strings.Contains(string(key.res.identity.body), word) {
			t.Fatalf("the quiz body holds %q: %s", word, key.res.identity.body)
		}
	}
}

func TestETagMatches(t *testing.T) {
	const tag = `"abc"`
	for header, want := range map[string]bool{
		"":                 false,
		`"abc"`:            true,
		`W/"abc"`:          true,
		`"x", "abc"`:       true,
		`"x","y"`:          false,
		"*":                true,
		`"abcd"`:           false,
		` "zzz" , W/"abc"`: true,
	} {
		if got := etagMatches(header, tag); got != want {
			t.Errorf("etagMatches(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := store.Cursor{SubmittedAt: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC), ID: uuid.New()}
	got, err := decodeCursor(encodeCursor(c))
	if err != nil || !got.SubmittedAt.Equal(c.SubmittedAt) || got.ID != c.ID {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, c)
	}
	for _, bad := range []string{"!!", "bm9wZQ", encodeCursor(c)[:10]} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("decodeCursor(%q) accepted a cursor this API never issued", bad)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h := newHasher(1)
	ctx := context.Background()
	enc, err := h.hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.verify(ctx, "correct horse", enc); !ok || err != nil {
		t.Fatalf("verify right password: %v, %v", ok, err)
	}
	if ok, err := h.verify(ctx, "wrong horse", enc); ok || err != nil {
		t.Fatalf("verify wrong password: %v, %v", ok, err)
	}
	if again, _ := h.hash(ctx, "correct horse"); again == enc {
		t.Fatal("two hashes of one password must differ by their salt")
	}
	if _, err := h.verify(ctx, "x", "$argon2id$garbage"); err == nil {
		t.Fatal("a malformed hash must be an error")
	}
	// An empty key would match every password: argon2 makes an empty key
	// of any password, and two empty keys compare equal.
	noKey := enc[:strings.LastIndex(enc, "$")+1]
	if ok, err := h.verify(ctx, "any password", noKey); ok || err == nil {
		t.Fatalf("verify against a hash without a key: %v, %v; want an error", ok, err)
	}
}
