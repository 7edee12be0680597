package events_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
)

// Fuzz targets of the event codec and the idempotency path. Each runs its
// seeds (testdata/fuzz/<name> and the f.Add lines) in every `go test`;
// `go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 10s ./events` searches.

// fuzzID is a uuid made of whatever bytes the fuzzer gives.
func fuzzID(b []byte) uuid.UUID {
	var u uuid.UUID
	copy(u[:], b)
	return u
}

func sameEvent(a, b events.AttemptSubmitted) bool {
	return a.AttemptID == b.AttemptID && a.StudentID == b.StudentID && a.QuizID == b.QuizID &&
		a.CourseID == b.CourseID && a.IdempotencyKey == b.IdempotencyKey && a.Score == b.Score &&
		a.MaxScore == b.MaxScore && a.SubmittedAt.Equal(b.SubmittedAt) &&
		bytes.Equal(a.AnswersHash, b.AnswersHash) && slices.Equal(a.Answers, b.Answers)
}

func fuzzSeedEvent() events.AttemptSubmitted {
	student, quiz := uuid.MustParse("6f1f6a3e-8c1d-4a53-9a61-0b1f3c0e2d11"), uuid.MustParse("0c6d1c9e-3f0b-4e57-8d0a-7f2e4b5a6c70")
	answers := []events.Answer{{QuestionID: "q1", ChoiceID: "c1"}, {QuestionID: "q2", ChoiceID: "c3"}}
	return events.AttemptSubmitted{
		AttemptID: events.AttemptID(student, "key-1"), StudentID: student, QuizID: quiz,
		CourseID: uuid.MustParse("a2b7c0de-1e2f-4a3b-9c4d-5e6f7a8b9c0d"), IdempotencyKey: "key-1",
		Answers: answers, AnswersHash: events.HashAnswers(quiz, answers), Score: 1, MaxScore: 10,
		SubmittedAt: time.Date(2026, 11, 26, 9, 30, 0, 123456000, time.UTC),
	}
}

// Decode never panics on arbitrary bytes; it either refuses them as
// undecodable or returns an event that keeps every bound it promises, that
// encodes back to bytes decoding to the same event, and that DecodeAt
// accepts under its own subject only.
func FuzzDecode(f *testing.F) {
	good, err := events.Encode(fuzzSeedEvent())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"type":"AttemptSubmitted","schema":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := events.Decode(data)
		if err != nil {
			if !errors.Is(err, events.ErrUndecodable) {
				t.Fatalf("error %v does not wrap ErrUndecodable", err)
			}
			return
		}
		switch {
		case e.AttemptID == uuid.Nil || e.StudentID == uuid.Nil || e.QuizID == uuid.Nil || e.CourseID == uuid.Nil:
			t.Fatalf("decoded a nil id: %+v", e)
		case e.SubmittedAt.IsZero():
			t.Fatal("decoded a zero submitted_at")
		case e.Score < 0 || e.Score > e.MaxScore || e.MaxScore > events.MaxQuestions:
			t.Fatalf("decoded score %d of %d", e.Score, e.MaxScore)
		case len(e.Answers) > events.MaxQuestions || e.Answers == nil:
			t.Fatalf("decoded %d answers (nil: %t)", len(e.Answers), e.Answers == nil)
		case utf8.RuneCountInString(e.IdempotencyKey) > events.MaxIdempotencyKey:
			t.Fatalf("decoded a key of %d characters", utf8.RuneCountInString(e.IdempotencyKey))
		case len(e.AnswersHash) != 32:
			t.Fatalf("decoded a %d-byte answers hash", len(e.AnswersHash))
		}
		again, err := events.Encode(e)
		if err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		e2, err := events.Decode(again)
		if err != nil {
			t.Fatalf("a decoded event, encoded, does not decode: %v\n%s", err, again)
		}
		if !sameEvent(e, e2) {
			t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", e2, e)
		}
		if third, _ := events.Encode(e2); !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
		if _, err := events.DecodeAt(e.Subject(), data); err != nil {
			t.Fatalf("DecodeAt under its own subject: %v", err)
		}
		if _, err := events.DecodeAt(events.AttemptSubject(e.AttemptID, e.StudentID), data); err == nil && e.AttemptID != e.StudentID {
			t.Fatal("DecodeAt accepted the event under a swapped subject")
		}
	})
}

// DecodeAt accepts exactly the decodable events stored under their own
// subject, whatever the subject and bytes.
func FuzzDecodeAt(f *testing.F) {
	e := fuzzSeedEvent()
	good, err := events.Encode(e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e.Subject(), good)
	f.Add(events.AttemptSubject(uuid.New(), e.AttemptID), good)
	f.Add(events.StudentSubjects(e.StudentID), good)
	f.Add("", good)
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		got, err := events.DecodeAt(subject, data)
		want, derr := events.Decode(data)
		switch {
		case derr != nil:
			if err == nil || !errors.Is(err, events.ErrUndecodable) {
				t.Fatalf("DecodeAt accepted what Decode refuses (%v): %v", derr, err)
			}
		case subject != want.Subject():
			if err == nil || !errors.Is(err, events.ErrUndecodable) {
				t.Fatalf("DecodeAt accepted subject %q for %s: %v", subject, want.Subject(), err)
			}
		case err != nil:
			t.Fatalf("DecodeAt refused the event under its own subject: %v", err)
		case !sameEvent(got, want):
			t.Fatalf("DecodeAt and Decode disagree:\n%+v\n%+v", got, want)
		}
	})
}

// Every event the API can build (ids set, score within bounds, a key of at
// most MaxIdempotencyKey characters, a time JSON can carry) encodes, and
// decodes to itself; one that breaks a bound is refused.
func FuzzEventRoundTrip(f *testing.F) {
	e := fuzzSeedEvent()
	f.Add(e.StudentID[:], e.QuizID[:], e.CourseID[:], e.IdempotencyKey, "q1=c1\nq2=c3", 1, 10, e.SubmittedAt.UnixNano())
	f.Add([]byte{1}, []byte{2}, []byte{3}, "", "", 0, 0, int64(1))
	f.Add([]byte{1}, []byte{2}, []byte{3}, string(make([]byte, 129)), "q=c", 11, 10, int64(-1))
	f.Fuzz(func(t *testing.T, student, quiz, course []byte, key, answerText string, score, maxScore int, nanos int64) {
		var answers []events.Answer
		for line := range bytes.SplitSeq([]byte(answerText), []byte("\n")) {
			q, c, _ := bytes.Cut(line, []byte("="))
			answers = append(answers, events.Answer{QuestionID: string(q), ChoiceID: string(c)})
		}
		ev := events.AttemptSubmitted{
			AttemptID: events.AttemptID(fuzzID(student), key), StudentID: fuzzID(student), QuizID: fuzzID(quiz),
			CourseID: fuzzID(course), IdempotencyKey: key, Answers: answers,
			AnswersHash: events.HashAnswers(fuzzID(quiz), answers), Score: score, MaxScore: maxScore,
			SubmittedAt: time.Unix(0, nanos).UTC(),
		}
		data, err := events.Encode(ev)
		if err != nil {
			t.Fatalf("encode: %v", err) // every time.Unix(0, n) is within JSON's years
		}
		got, err := events.Decode(data)
		valid := ev.StudentID != uuid.Nil && ev.QuizID != uuid.Nil && ev.CourseID != uuid.Nil &&
			!ev.SubmittedAt.IsZero() && score >= 0 && score <= maxScore && maxScore <= events.MaxQuestions &&
			len(answers) <= events.MaxQuestions && utf8.RuneCountInString(key) <= events.MaxIdempotencyKey
		if valid != (err == nil) {
			t.Fatalf("valid %t, decode error %v:\n%s", valid, err, data)
		}
		if err != nil {
			return
		}
		if !utf8.ValidString(key) || !allValid(answers) {
			// JSON carries text: invalid UTF-8 becomes U+FFFD, one for
			// each bad byte, so the bounds hold but the bytes differ.
			return
		}
		if !sameEvent(got, ev) {
			t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", got, ev)
		}
		if key != "" && events.AttemptID(got.StudentID, got.IdempotencyKey) != got.AttemptID {
			t.Fatal("the stored key no longer derives the attempt id")
		}
	})
}

func allValid(answers []events.Answer) bool {
	for _, a := range answers {
		if !utf8.ValidString(a.QuestionID) || !utf8.ValidString(a.ChoiceID) {
			return false
		}
	}
	return true
}

// AttemptID is a pure function of (student, key) for a non-empty key: a
// retry maps to the same id, another student or key to another id; an
// empty key gives a fresh random id each time.
func FuzzAttemptID(f *testing.F) {
	f.Add([]byte("student-0000000"), "try-1", "try-2")
	f.Add([]byte{}, "", "x")
	f.Add([]byte{0xff}, "\xff", "\xfe")
	f.Fuzz(func(t *testing.T, studentBytes []byte, key, other string) {
		student := fuzzID(studentBytes)
		id := events.AttemptID(student, key)
		if key == "" {
			if events.AttemptID(student, key) == id {
				t.Fatal("two submissions without a key got the same id")
			}
			return
		}
		if events.AttemptID(student, key) != id {
			t.Fatal("the same (student, key) gave two ids")
		}
		if id.Version() != 5 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("id %s is not a name-based (SHA-1) uuid", id)
		}
		if other != key && other != "" && events.AttemptID(student, other) == id {
			t.Fatalf("keys %q and %q gave the same id", key, other)
		}
		neighbour := student
		neighbour[15] ^= 1
		if events.AttemptID(neighbour, key) == id {
			t.Fatal("two students' same key gave the same id")
		}
	})
}

// HashAnswers sees answers as a set: any order gives the same hash, and
// the quiz is part of it.
func FuzzHashAnswers(f *testing.F) {
	f.Add([]byte{1}, "q1=c1\nq2=c2\nq3=c3", uint(1))
	f.Add([]byte{2}, "", uint(0))
	f.Add([]byte{3}, "a=b\na=b\nc=", uint(7))
	f.Fuzz(func(t *testing.T, quizBytes []byte, answerText string, rotate uint) {
		var answers []events.Answer
		for line := range bytes.SplitSeq([]byte(answerText), []byte("\n")) {
			q, c, _ := bytes.Cut(line, []byte("="))
			answers = append(answers, events.Answer{QuestionID: string(q), ChoiceID: string(c)})
		}
		quiz := fuzzID(quizBytes)
		h := events.HashAnswers(quiz, answers)
		if len(h) != 32 {
			t.Fatalf("hash of %d bytes", len(h))
		}
		reordered := slices.Clone(answers)
		slices.Reverse(reordered)
		if len(reordered) > 0 {
			r := int(rotate % uint(len(reordered)))
			reordered = append(reordered[r:], reordered[:r]...)
		}
		if !bytes.Equal(events.HashAnswers(quiz, reordered), h) {
			t.Fatalf("reordering %v changed the hash", answers)
		}
		other := quiz
		other[0] ^= 1
		if bytes.Equal(events.HashAnswers(other, answers), h) {
			t.Fatal("another quiz gave the same hash")
		}
	})
}
