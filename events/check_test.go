package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
)

func checkRef() events.CheckRef {
	student := uuid.New()
	exercise := uuid.New()
	return events.CheckRef{CheckID: events.CheckID(student, "k"), StudentID: student, ExerciseID: exercise, CourseID: uuid.New(),
		IdempotencyKey: "k", Language: "python", SourceHash: events.HashSource(exercise, "python", "print(1)"),
		SubmittedAt: time.Now().UTC().Truncate(time.Microsecond)}
}

// Each check event decodes to itself under its own subject, and only there.
func TestCheckEventsRoundTrip(t *testing.T) {
	ref := checkRef()
	for _, e := range []events.CheckEvent{
		{Requested: &events.CodeCheckRequested{CheckRef: ref, Source: "print(1)"}},
		{Started: &events.CodeCheckStarted{CheckRef: ref, Delivery: 2, StartedAt: ref.SubmittedAt}},
		{Completed: &events.CodeCheckCompleted{CheckRef: ref, ResultID: events.ResultID(ref.CheckID), Status: events.CheckPassed,
			Tests: []events.CheckTest{{Name: "test 1", Passed: true}}, FinishedAt: ref.SubmittedAt}},
	} {
		data, err := events.EncodeCheck(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := events.DecodeCheckAt(e.Subject(), data)
		if err != nil || got.Ref().CheckID != ref.CheckID || got.MsgID() != e.MsgID() {
			t.Fatalf("%s: %+v, %v", e.Subject(), got, err)
		}
		if _, err := events.DecodeCheckAt(events.CheckSubject(uuid.New(), ref.CheckID, "requested"), data); !errors.Is(err, events.ErrUndecodable) {
			t.Fatalf("%s under another subject: %v, want ErrUndecodable", e.Subject(), err)
		}
	}
	if events.CheckID(ref.StudentID, "k") != ref.CheckID || events.CheckID(uuid.New(), "k") == ref.CheckID {
		t.Fatal("a check id is not (student, key)'s own")
	}
}

// A verdict whose result id is not its check's, or with a status that is
// no verdict, or output over 16 KiB, is refused: a second verdict cannot
// pass for the first under another id.
func TestCheckEventsRefused(t *testing.T) {
	ref := checkRef()
	for name, c := range map[string]events.CodeCheckCompleted{
		"other result id": {CheckRef: ref, ResultID: uuid.New(), Status: events.CheckPassed, FinishedAt: ref.SubmittedAt},
		"not a verdict":   {CheckRef: ref, ResultID: events.ResultID(ref.CheckID), Status: events.CheckRunning, FinishedAt: ref.SubmittedAt},
		"output too long": {CheckRef: ref, ResultID: events.ResultID(ref.CheckID), Status: events.CheckFailed, FinishedAt: ref.SubmittedAt,
			Output: string(make([]byte, events.MaxCheckOutput+1))},
	} {
		e := events.CheckEvent{Completed: &c}
		data, err := events.EncodeCheck(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := events.DecodeCheckAt(e.Subject(), data); !errors.Is(err, events.ErrUndecodable) {
			t.Errorf("%s: %v, want ErrUndecodable", name, err)
		}
	}
}
