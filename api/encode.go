package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// This file writes every JSON response (writeJSON), and the bodies of the
// student reads and the attempt POST,
// the API's most frequent answers, by appending to a pooled buffer: the
// same bytes encoding/json writes (encode_test.go holds them equal),
// without its reflection and allocations, and sent with a Content-Length
// in one write. Every string written here is a UUID, a status constant, a
// time or a base64url cursor, none of which JSON escapes.

var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// contentTypeJSON is the Content-Type of every JSON answer; never modified.
var contentTypeJSON = []string{echo.MIMEApplicationJSON}

// appender is a body that writes its own JSON (this file's appenders).
type appender interface {
	appendJSON(b []byte) []byte
}

// writeJSON is the one way a handler writes a JSON response, with a
// Content-Length and in one write. v is a body serialized ahead ([]byte:
// the content snapshot's, sent as it is), an appender, or any other value,
// which encoding/json writes as Echo's c.JSON would. It returns the
// error of encoding or of writing.
func writeJSON(c echo.Context, status int, v any) error {
	var (
		bp  *[]byte
		enc *encoder
		b   []byte
	)
	switch v := v.(type) {
	case []byte:
		b = v
	case appender:
		bp = bodies.Get().(*[]byte)
		b = v.appendJSON((*bp)[:0])
		b = append(b, '\n') // as json.Encoder ends a value
	default:
		enc = encoders.Get().(*encoder)
		enc.buf.Reset()
		if err := enc.enc.Encode(v); err != nil {
			encoders.Put(enc)
			return err
		}
		b = enc.buf.Bytes()
	}
	h := c.Response().Header()
	h[echo.HeaderContentType] = contentTypeJSON
	if _, prebuilt := v.([]byte); !prebuilt || h[echo.HeaderContentLength] == nil { // a prebuilt body may come with its length
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	}
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(b)
	// A rare huge body does not stay pinned in a pool.
	switch {
	case bp != nil && cap(b) <= 64<<10:
		*bp = b
		bodies.Put(bp)
	case enc != nil && enc.buf.Cap() <= 64<<10:
		encoders.Put(enc)
	}
	return err
}

// encoder is encoding/json's encoder bound to its buffer, pooled so that
// writing a value allocates neither.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

func appendUUID(b []byte, id uuid.UUID) []byte {
	var s [36]byte
	hex.Encode(s[0:8], id[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], id[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], id[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], id[8:10])
	s[23] = '-'
	hex.Encode(s[24:], id[10:])
	b = append(b, '"')
	b = append(b, s[:]...)
	return append(b, '"')
}

// appendTime writes t as time.Time's MarshalJSON does (RFC 3339 with the
// nanoseconds it has), for years 0 to 9999.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func (a attemptJSON) appendJSON(b []byte) []byte { return appendAttempt(b, a) }

func appendAttempt(b []byte, a attemptJSON) []byte {
	b = append(b, `{"attempt_id":`...)
	b = appendUUID(b, a.AttemptID)
	b = append(b, `,"quiz_id":`...)
	b = appendUUID(b, a.QuizID)
	b = append(b, `,"student_id":`...)
	b = appendUUID(b, a.StudentID)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(a.Score), 10)
	b = append(b, `,"max_score":`...)
	b = strconv.AppendInt(b, int64(a.MaxScore), 10)
	b = append(b, `,"status":"`...)
	b = append(b, a.Status...)
	b = append(b, `","submitted_at":`...)
	b = appendTime(b, a.SubmittedAt)
	return append(b, '}')
}

// attemptPage is the body of the attempts list.
type attemptPage struct {
	attempts []attemptJSON
	next     *string
}

func (p attemptPage) appendJSON(b []byte) []byte { return appendAttemptPage(b, p.attempts, p.next) }

// appendAttemptPage writes {"attempts": [...], "next_cursor": ...|null}.
func appendAttemptPage(b []byte, attempts []attemptJSON, next *string) []byte {
	b = append(b, `{"attempts":[`...)
	for i, a := range attempts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAttempt(b, a)
	}
	b = append(b, `],"next_cursor":`...)
	if next == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = append(b, *next...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// progressBody is the body of the student's progress.
type progressBody []courseProgressJSON

func (p progressBody) appendJSON(b []byte) []byte { return appendProgress(b, p) }

// appendProgress writes {"courses": [...]}, each course's best scores by
// quiz id in ascending order, as encoding/json sorts a map's keys.
func appendProgress(b []byte, courses []courseProgressJSON) []byte {
	b = append(b, `{"courses":[`...)
	var quizzes []uuid.UUID
	for i, c := range courses {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"course_id":`...)
		b = appendUUID(b, c.CourseID)
		b = append(b, `,"quizzes_total":`...)
		b = strconv.AppendInt(b, int64(c.QuizzesTotal), 10)
		b = append(b, `,"quizzes_attempted":`...)
		b = strconv.AppendInt(b, int64(c.QuizzesAttempted), 10)
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(c.Attempts), 10)
		b = append(b, `,"best_scores":{`...)
		quizzes = quizzes[:0]
		for q := range c.BestScores {
			quizzes = append(quizzes, q)
		}
		// Lowercase hex keeps the bytes' order.
		slices.SortFunc(quizzes, func(x, y uuid.UUID) int { return bytes.Compare(x[:], y[:]) })
		for j, q := range quizzes {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendUUID(b, q)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(c.BestScores[q]), 10)
		}
		b = append(b, `},"exercises_total":`...)
		b = strconv.AppendInt(b, int64(c.ExercisesTotal), 10)
		b = append(b, `,"exercises_passed":`...)
		b = strconv.AppendInt(b, int64(c.ExercisesPassed), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
