package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Decode parses with github.com/segmentio/encoding; for any bytes it must
// agree with encoding/json: both refuse them, or both return equal events.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	student, quiz := uuid.MustParse("6f1f6a3e-8c1d-4a53-9a61-0b1f3c0e2d11"), uuid.MustParse("0c6d1c9e-3f0b-4e57-8d0a-7f2e4b5a6c70")
	answers := []Answer{{QuestionID: "q1", ChoiceID: "c1"}, {QuestionID: "q\u00e9\"2", ChoiceID: "c3"}}
	valid, err := Encode(AttemptSubmitted{
		AttemptID: AttemptID(student, "key-1"), StudentID: student, QuizID: quiz, CourseID: uuid.New(),
		IdempotencyKey: "key-1", Answers: answers, AnswersHash: HashAnswers(quiz, answers), Score: 1, MaxScore: 10,
		SubmittedAt: time.Date(2026, 11, 26, 9, 30, 0, 123456000, time.UTC),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, edit := range [][2]string{
		{`"answers":[`, `"answers":[],"x":[`},         // an unknown field
		{`"score":1`, `"score":1.0`},                  // not an integer
		{`"score":1`, `"score":1e0`},                  // not an integer either
		{`"score":1`, `"Score":1`},                    // a key in other case
		{`"score":1`, `"score":1,"score":2`},          // a key twice
		{`"answers":[`, `"answers":null,"a":[`},       // null
		{`"key-1"`, `"key-\u0031"`},                   // an escape
		{`"key-1"`, "\"key-\xff\""},                   // invalid UTF-8
		{`"submitted_at":"2026`, `"submitted_at":"0`}, // a bad time
		{`{`, `{ `},
	} {
		f.Add(bytes.Replace(valid, []byte(edit[0]), []byte(edit[1]), 1))
	}
	f.Add(append(bytes.Clone(valid), ` {}`...)) // data after the value
	f.Add([]byte(`{"type":"attempt.submitted","answers":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := Decode(data)
		want, wantErr := decode(data, json.Unmarshal)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("Decode: %v; with encoding/json: %v\n%q", gotErr, wantErr, data)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode: %+v\nwith encoding/json: %+v\n%q", got, want, data)
		}
	})
}
