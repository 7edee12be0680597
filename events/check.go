package events

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	segjson "github.com/segmentio/encoding/json"
)

// The code-checks family (API v1.1, "Code checks"; docs/checker.md): a
// student's program is requested to be checked (CodeCheckRequested, the
// API's 202), a checker takes it (CodeCheckStarted) and ends it with a
// verdict (CodeCheckCompleted). Each check has three subjects of its own,
// so that the stream refuses a second request and a second completion of
// one check for ever, not only within the duplicate window.

// Types of the check events on the wire.
const (
	TypeCodeCheckRequested = "CodeCheckRequested"
	TypeCodeCheckStarted   = "CodeCheckStarted"
	TypeCodeCheckCompleted = "CodeCheckCompleted"
)

// SchemaCheck is the current schema version of the check events.
const SchemaCheck = 1

// CheckSubjectPrefix roots every check subject:
// quizstream.checks.<student>.<check>.<requested|started|completed>.
const CheckSubjectPrefix = "quizstream.checks"

// Bounds the check events hold to (the HTTP contract's).
const (
	// MaxSource is the most bytes a program may have.
	MaxSource = 64 << 10
	// MaxCheckOutput is the most bytes of output a completed check keeps.
	MaxCheckOutput = 16 << 10
	// MaxLanguage bounds a language name.
	MaxLanguage = 32
	// MaxCheckTests bounds the test results of a check.
	MaxCheckTests = 1000
)

// Check statuses: the API's Check.status.
const (
	CheckQueued  = "queued"
	CheckRunning = "running"
	CheckPassed  = "passed"
	CheckFailed  = "failed"
	CheckError   = "error"
)

// CheckRank orders a check's statuses: a higher one is further along (a
// check's row, and its read-model entry, only ever move up). The final
// statuses share the highest rank.
func CheckRank(status string) int {
	switch status {
	case CheckQueued:
		return 0
	case CheckRunning:
		return 1
	}
	return 2
}

// CheckRef is what every event of a check carries of its request: enough
// to write the check's row from any one of them.
type CheckRef struct {
	CheckID        uuid.UUID `json:"check_id"`
	StudentID      uuid.UUID `json:"student_id"`
	ExerciseID     uuid.UUID `json:"exercise_id"`
	CourseID       uuid.UUID `json:"course_id"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Language       string    `json:"language"`
	// SourceHash fingerprints exercise, language and source (HashSource):
	// a retry with the same Idempotency-Key is the same check only if it matches.
	SourceHash  []byte    `json:"source_hash"`
	SubmittedAt time.Time `json:"submitted_at"`
}

// CodeCheckRequested is the fact that the API accepted a program to check.
type CodeCheckRequested struct {
	CheckRef
	Source string `json:"source"`
}

// CodeCheckStarted is the fact that a checker took the check, on the
// Delivery-th delivery of its request.
type CodeCheckStarted struct {
	CheckRef
	Delivery  uint64    `json:"delivery"`
	StartedAt time.Time `json:"started_at"`
}

// CheckTest is one test case's outcome, safe to show to the student.
type CheckTest struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	TimeMS int64  `json:"time_ms"`
}

// CodeCheckCompleted is a check's verdict: passed, failed or error (no
// verdict could be had in time: the student may submit again). There is
// at most one per check: its ResultID derives from the check's id.
type CodeCheckCompleted struct {
	CheckRef
	ResultID   uuid.UUID   `json:"result_id"`
	Status     string      `json:"status"`
	Tests      []CheckTest `json:"tests"`
	Output     string      `json:"output"`
	StartedAt  *time.Time  `json:"started_at,omitempty"`
	FinishedAt time.Time   `json:"finished_at"`
}

// CheckEvent is one event of the family; exactly one field is set.
type CheckEvent struct {
	Requested *CodeCheckRequested
	Started   *CodeCheckStarted
	Completed *CodeCheckCompleted
}

// Ref returns what the event carries of its check's request.
func (e CheckEvent) Ref() CheckRef {
	switch {
	case e.Requested != nil:
		return e.Requested.CheckRef
	case e.Started != nil:
		return e.Started.CheckRef
	case e.Completed != nil:
		return e.Completed.CheckRef
	}
	return CheckRef{}
}

func (e CheckEvent) kind() (string, string) {
	switch {
	case e.Requested != nil:
		return TypeCodeCheckRequested, "requested"
	case e.Started != nil:
		return TypeCodeCheckStarted, "started"
	case e.Completed != nil:
		return TypeCodeCheckCompleted, "completed"
	}
	return "", ""
}

// Subject returns the event's own subject.
func (e CheckEvent) Subject() string {
	r := e.Ref()
	_, k := e.kind()
	return CheckSubject(r.StudentID, r.CheckID, k)
}

// MsgID returns the event's message id: the check's id for its request,
// the result id for its completion, and the check and delivery for a start
// (a redelivery's start is an event of its own).
func (e CheckEvent) MsgID() string {
	switch {
	case e.Requested != nil:
		return e.Requested.CheckID.String()
	case e.Started != nil:
		return fmt.Sprintf("%s.started.%d", e.Started.CheckID, e.Started.Delivery)
	case e.Completed != nil:
		return e.Completed.ResultID.String()
	}
	return ""
}

// CheckSubject returns the subject of one kind ("requested", "started",
// "completed") of a check's events.
func CheckSubject(student, check uuid.UUID, kind string) string {
	return CheckSubjectPrefix + "." + student.String() + "." + check.String() + "." + kind
}

// CheckRequestSubjects is the wildcard subject of every check request,
// which the checkers' consumer filters on.
const CheckRequestSubjects = CheckSubjectPrefix + ".*.*.requested"

// StudentCheckSubjects returns the wildcard subject of every event of a
// student's checks.
func StudentCheckSubjects(student uuid.UUID) string {
	return CheckSubjectPrefix + "." + student.String() + ".>"
}

// CheckSubjects returns the wildcard subject of every event of one check.
func CheckSubjects(student, check uuid.UUID) string {
	return CheckSubjectPrefix + "." + student.String() + "." + check.String() + ".*"
}

var (
	checkNamespace  = uuid.MustParse("9a1e2d7c-5b3f-4e60-8c21-4f7a9d0b3e58")
	resultNamespace = uuid.MustParse("c2d84f10-7e9b-4a35-b6c1-0e5f3a8d2b97")
)

// CheckID returns the id of a check: derived from (student, key) when the
// client sent an Idempotency-Key, so that every retry maps to the same
// check, and random otherwise.
func CheckID(student uuid.UUID, idempotencyKey string) uuid.UUID {
	if idempotencyKey == "" {
		return uuid.New()
	}
	return uuid.NewSHA1(checkNamespace, append(student[:], idempotencyKey...))
}

// ResultID returns the id of a check's one completion.
func ResultID(check uuid.UUID) uuid.UUID { return uuid.NewSHA1(resultNamespace, check[:]) }

// HashSource fingerprints a check's request: its exercise, language and source.
func HashSource(exercise uuid.UUID, language, source string) []byte {
	h := sha256.New()
	h.Write(exercise[:])
	fmt.Fprintf(h, "%d:%s", len(language), language)
	h.Write([]byte(source))
	return h.Sum(nil)
}

type checkEnvelope struct {
	Type   string          `json:"type"`
	Schema int             `json:"schema"`
	Event  json.RawMessage `json:"event"`
}

// EncodeCheck returns the wire form of e.
func EncodeCheck(e CheckEvent) ([]byte, error) {
	typ, _ := e.kind()
	var v any
	switch {
	case e.Requested != nil:
		v = e.Requested
	case e.Started != nil:
		v = e.Started
	case e.Completed != nil:
		v = e.Completed
	default:
		return nil, fmt.Errorf("encode check event: no event")
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return json.Marshal(checkEnvelope{Type: typ, Schema: SchemaCheck, Event: body})
}

// DecodeCheckAt parses and checks a check event stored under subject; it
// returns an error wrapping ErrUndecodable for anything else: an unknown
// type or schema version, a missing id, a field out of its bounds, or a
// subject that is not the event's own.
func DecodeCheckAt(subject string, data []byte) (CheckEvent, error) {
	var env checkEnvelope
	if err := segjson.Unmarshal(data, &env); err != nil {
		return CheckEvent{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if env.Schema != SchemaCheck {
		return CheckEvent{}, fmt.Errorf("%w: %s schema version %d", ErrUndecodable, env.Type, env.Schema)
	}
	var e CheckEvent
	var target any
	switch env.Type {
	case TypeCodeCheckRequested:
		e.Requested = &CodeCheckRequested{}
		target = e.Requested
	case TypeCodeCheckStarted:
		e.Started = &CodeCheckStarted{}
		target = e.Started
	case TypeCodeCheckCompleted:
		e.Completed = &CodeCheckCompleted{}
		target = e.Completed
	default:
		return CheckEvent{}, fmt.Errorf("%w: type %q", ErrUndecodable, env.Type)
	}
	if err := segjson.Unmarshal(env.Event, target); err != nil {
		return CheckEvent{}, fmt.Errorf("%w: %s: %w", ErrUndecodable, env.Type, err)
	}
	if err := e.validate(); err != nil {
		return CheckEvent{}, fmt.Errorf("%w: %s: %w", ErrUndecodable, env.Type, err)
	}
	if subject != e.Subject() {
		return CheckEvent{}, fmt.Errorf("%w: subject %s is not the event's own", ErrUndecodable, subject)
	}
	return e, nil
}

func (e CheckEvent) validate() error {
	r := e.Ref()
	switch {
	case r.CheckID == uuid.Nil, r.StudentID == uuid.Nil, r.ExerciseID == uuid.Nil, r.CourseID == uuid.Nil:
		return fmt.Errorf("missing id")
	case r.SubmittedAt.IsZero():
		return fmt.Errorf("missing submitted_at")
	case r.Language == "" || len(r.Language) > MaxLanguage || !utf8.ValidString(r.Language):
		return fmt.Errorf("language %q", r.Language)
	case len(r.SourceHash) != sha256.Size:
		return fmt.Errorf("source_hash")
	case utf8.RuneCountInString(r.IdempotencyKey) > MaxIdempotencyKey:
		return fmt.Errorf("idempotency_key over %d characters", MaxIdempotencyKey)
	}
	switch {
	case e.Requested != nil:
		if len(e.Requested.Source) > MaxSource || strings.ContainsRune(e.Requested.Source, 0) {
			return fmt.Errorf("source over %d bytes or with a NUL", MaxSource)
		}
	case e.Started != nil:
		if e.Started.StartedAt.IsZero() {
			return fmt.Errorf("missing started_at")
		}
	case e.Completed != nil:
		c := e.Completed
		switch {
		case c.ResultID != ResultID(c.CheckID):
			return fmt.Errorf("result_id is not the check's")
		case c.Status != CheckPassed && c.Status != CheckFailed && c.Status != CheckError:
			return fmt.Errorf("status %q", c.Status)
		case len(c.Output) > MaxCheckOutput || !utf8.ValidString(c.Output) || strings.ContainsRune(c.Output, 0):
			return fmt.Errorf("output over %d bytes, not UTF-8 or with a NUL", MaxCheckOutput)
		case len(c.Tests) > MaxCheckTests:
			return fmt.Errorf("%d tests", len(c.Tests))
		case c.FinishedAt.IsZero():
			return fmt.Errorf("missing finished_at")
		}
		if c.Tests == nil {
			c.Tests = []CheckTest{}
		}
	}
	return nil
}
