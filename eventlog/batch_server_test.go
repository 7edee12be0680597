package eventlog_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
)

// rawAck is the server's answer to the commit of an atomic batch.
type rawAck struct {
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Batch  string              `json:"batch"`
	Count  int                 `json:"count"`
	Error  *jetstream.APIError `json:"error"`
}

// sendRawBatch publishes msgs as one atomic batch by hand (headers
// Nats-Batch-Id, Nats-Batch-Sequence, Nats-Batch-Commit: 1 on the last,
// no reply before it) and returns the commit's answer.
func sendRawBatch(t *testing.T, nc *nats.Conn, msgs []*nats.Msg) rawAck {
	t.Helper()
	id := uuid.NewString()
	for i, m := range msgs {
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set("Nats-Batch-Commit", "1")
	resp, err := nc.RequestMsg(last, 5*time.Second)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	var ack rawAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		t.Fatalf("commit answer %q: %v", resp.Data, err)
	}
	if ack.Error == nil && (ack.Batch != id || ack.Count != len(msgs)) {
		t.Fatalf("PubAck %s for batch %s of %d", resp.Data, id, len(msgs))
	}
	return ack
}

// attemptMsg is a message as the Batcher sends it: its own attempt subject,
// its attempt id as Nats-Msg-Id, and the guard that refuses a second
// message on the subject.
func attemptMsg(subject, msgID string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = []byte(msgID)
	m.Header.Set("Nats-Msg-Id", msgID)
	m.Header.Set("Nats-Expected-Stream", "ATTEMPTS")
	m.Header.Set("Nats-Expected-Last-Subject-Sequence", "0")
	return m
}

func newSubject() string { return events.AttemptSubject(uuid.New(), uuid.New()) }

// What the pinned server accepts in an atomic batch, and how it refuses
// one; the Batcher relies on every line of it:
//   - Nats-Msg-Id, Nats-Expected-Stream and Nats-Expected-Last-Subject-Sequence
//     are accepted on every message (distinct subjects);
//     Nats-Expected-Last-Msg-Id is not (10177).
//   - The commit's PubAck carries the last message's sequence, the batch id
//     and the batch size; the messages have consecutive sequences in batch
//     order.
//   - A batch is all or nothing: a message whose Nats-Msg-Id is in the
//     duplicate window or earlier in the batch refuses it with 10201, a
//     failed subject guard with 10071 "wrong last sequence: <the subject's
//     sequence>", and a second guarded message on one subject with 10164.
//     None of them says which message it was.
//   - Past the duplicate window, the subject guard alone catches a retry.
//   - At most 1000 messages (10199), only on a stream with allow_atomic (10174).
func TestAtomicBatchServerRules(t *testing.T) {
	nc, js := eventstest.Connect(t, eventstest.NewServer(t))
	window := 500 * time.Millisecond
	if _, err := streams.EnsureStream(t.Context(), js, streams.StreamConfig{Duplicates: window}); err != nil {
		t.Fatal(err)
	}
	held := func() uint64 { return eventstest.StreamMessages(t, js, "ATTEMPTS") }

	subjects := []string{newSubject(), newSubject(), newSubject()}
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	var batch []*nats.Msg
	for i := range subjects {
		batch = append(batch, attemptMsg(subjects[i], ids[i]))
	}
	ack := sendRawBatch(t, nc, batch)
	t.Logf("accepted: %+v", ack)
	if ack.Error != nil || ack.Seq != 3 || ack.Count != 3 || ack.Stream != "ATTEMPTS" {
		t.Fatalf("batch with Nats-Msg-Id and subject guards: %+v", ack)
	}
	s, err := js.Stream(t.Context(), "ATTEMPTS")
	if err != nil {
		t.Fatal(err)
	}
	for i, subj := range subjects {
		m, err := s.GetMsg(t.Context(), uint64(i+1))
		if err != nil || m.Subject != subj || string(m.Data) != ids[i] {
			t.Fatalf("seq %d: %+v, %v; want batch message %d", i+1, m, err, i+1)
		}
	}

	dupID := uuid.NewString()
	sameSubject := newSubject()
	refusals := []struct {
		name  string
		batch []*nats.Msg
		code  jetstream.ErrorCode
		desc  string
	}{
		{"a retry inside the window", []*nats.Msg{attemptMsg(newSubject(), uuid.NewString()), attemptMsg(subjects[0], ids[0])}, 10201, ""},
		{"a stored Nats-Msg-Id on a new subject", []*nats.Msg{attemptMsg(newSubject(), ids[1]), attemptMsg(newSubject(), uuid.NewString())}, 10201, ""},
		{"one Nats-Msg-Id twice", []*nats.Msg{attemptMsg(newSubject(), dupID), attemptMsg(newSubject(), dupID)}, 10201, ""},
		{"a stored subject under a new Nats-Msg-Id", []*nats.Msg{attemptMsg(newSubject(), uuid.NewString()), attemptMsg(subjects[1], uuid.NewString())}, 10071, "wrong last sequence: 2"},
		{"one subject twice", []*nats.Msg{attemptMsg(sameSubject, uuid.NewString()), attemptMsg(sameSubject, uuid.NewString())}, 10164, ""},
		{"Nats-Expected-Last-Msg-Id", func() []*nats.Msg {
			m := attemptMsg(newSubject(), uuid.NewString())
			m.Header.Set("Nats-Expected-Last-Msg-Id", ids[2])
			return []*nats.Msg{m, attemptMsg(newSubject(), uuid.NewString())}
		}(), 10177, ""},
		{"1001 messages", func() []*nats.Msg {
			var b []*nats.Msg
			for range 1001 {
				b = append(b, attemptMsg(newSubject(), uuid.NewString()))
			}
			return b
		}(), 10199, "atomic publish batch is too large: 1000"},
	}
	for _, c := range refusals {
		ack := sendRawBatch(t, nc, c.batch)
		t.Logf("%s: %+v", c.name, ack.Error)
		if ack.Error == nil || ack.Error.ErrorCode != c.code || (c.desc != "" && ack.Error.Description != c.desc) {
			t.Errorf("%s: %+v, want error %d %q", c.name, ack, c.code, c.desc)
		}
		if n := held(); n != 3 {
			t.Fatalf("%s: the stream holds %d messages, want the 3 before it", c.name, n)
		}
	}

	var full []*nats.Msg
	for range 1000 {
		full = append(full, attemptMsg(newSubject(), uuid.NewString()))
	}
	if ack := sendRawBatch(t, nc, full); ack.Error != nil || ack.Seq != 1003 {
		t.Fatalf("1000 messages: %+v", ack)
	}

	time.Sleep(2 * window) // past the duplicate window: the guard alone
	ack = sendRawBatch(t, nc, []*nats.Msg{attemptMsg(newSubject(), uuid.NewString()), attemptMsg(subjects[0], ids[0])})
	t.Logf("a retry after the window: %+v", ack.Error)
	if ack.Error == nil || ack.Error.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence ||
		ack.Error.Description != "wrong last sequence: 1" {
		t.Fatalf("a retry after the window: %+v", ack)
	}

	cfg := s.CachedInfo().Config
	cfg.AllowAtomicPublish = false
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	ack = sendRawBatch(t, nc, []*nats.Msg{attemptMsg(newSubject(), uuid.NewString()), attemptMsg(newSubject(), uuid.NewString())})
	if ack.Error == nil || ack.Error.ErrorCode != 10174 {
		t.Fatalf("a stream without allow_atomic: %+v", ack)
	}
	if n := held(); n != 1003 {
		t.Fatalf("the stream holds %d messages, want 1003", n)
	}
}

func TestEnsureStreamAllowsAtomicBatches(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	// A stream created before atomic batches were asked for.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "ATTEMPTS", Subjects: []string{events.SubjectPrefix + ".>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
	lg, err := eventlog.NewLog(t.Context(), js, streams.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), "ATTEMPTS")
	if err != nil {
		t.Fatal(err)
	}
	if !s.CachedInfo().Config.AllowAtomicPublish {
		t.Fatal("an existing stream was not updated to allow atomic batches")
	}
	b, err := eventlog.NewBatcher(t.Context(), lg, eventlog.BatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Batching() {
		t.Fatal("the Batcher does not batch on a stream that allows it")
	}
}
