package streams_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/streams"
)

// Dead letters print as `quizstream dlq list` and `dlq show` show them.
func TestWriteDeadLetters(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 31, 8, 0, 0, 250e6, time.UTC)
	letters := []streams.DeadLetter{
		{Seq: 1, OriginalSeq: 41, OriginalSubject: "quizstream.attempts.a.b", Reason: "undecodable", Data: []byte("{x"), Time: at},
		{Seq: 2, OriginalSeq: 7, OriginalSubject: "quizstream.attempts.c.d", Reason: "refused", Time: at},
	}
	var b bytes.Buffer
	if err := streams.WriteDeadLetters(&b, letters); err != nil {
		t.Fatal(err)
	}
	want := `SEQ  ORIGINAL_SEQ  TIME                  SUBJECT                  REASON
1    41            2025-01-31T08:00:00Z  quizstream.attempts.a.b  undecodable
2    7             2025-01-31T08:00:00Z  quizstream.attempts.c.d  refused
2 dead letter(s)
`
	if b.String() != want {
		t.Errorf("dlq list printed\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := letters[0].WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want = "seq: 1\noriginal_seq: 41\nsubject: quizstream.attempts.a.b\ntime: 2025-01-31T08:00:00.250Z\nreason: undecodable\ndata: {x\n"
	if b.String() != want {
		t.Errorf("dlq show printed\n%s\nwant\n%s", b.String(), want)
	}
}

// A status with missing objects is an error naming each, wrapping
// ErrNotApplied; one without is none.
func TestStatusErr(t *testing.T) {
	t.Parallel()
	st := streams.StatusResult{Families: []streams.FamilyStatus{
		{Name: "attempts"}, {Name: "checks", Missing: []string{"stream CHECKS", "consumer checker"}},
	}}
	if err := st.Err(); !errors.Is(err, streams.ErrNotApplied) || !strings.HasPrefix(err.Error(), "stream CHECKS, consumer checker: ") {
		t.Errorf("Err of a status with missing objects: %v", err)
	}
	st.Families[1].Missing = nil
	if err := st.Err(); err != nil {
		t.Errorf("Err of a complete status: %v", err)
	}
}
