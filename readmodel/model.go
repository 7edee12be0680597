package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/streams"
)

// ErrMissing means the model holds no value for the student (never
// folded, dropped by the bucket's TTL or size, or of another version).
var ErrMissing = errors.New("readmodel: no value for the student")

// ErrConflict means a Put lost its compare-and-set: the value changed
// since it was read. Read it again and fold again.
var ErrConflict = errors.New("readmodel: value changed meanwhile")

// Model is the read model's bucket. Get answers with a direct get (any
// replica of the bucket's stream answers); Put, on a Model opened with
// OpenWriter, publishes through an eventlog.Publisher, so that the folds
// of one batch share an atomic batch. It is safe for concurrent use.
type Model struct {
	kv  jetstream.KeyValue
	pub *eventlog.Publisher
}

// Open binds the bucket for reading, or returns streams.ErrNotApplied
// when it does not exist, or the lookup's error.
func Open(ctx context.Context, js jetstream.JetStream) (*Model, error) {
	kv, err := js.KeyValue(ctx, streams.ReadModelBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("bucket %s: %w", streams.ReadModelBucket, streams.ErrNotApplied)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", streams.ReadModelBucket, err)
	}
	return &Model{kv: kv}, nil
}

// OpenWriter is Open, with a publisher for Put (batches as cfg sizes
// them); Close stops it.
func OpenWriter(ctx context.Context, js jetstream.JetStream, cfg eventlog.BatchConfig) (*Model, error) {
	m, err := Open(ctx, js)
	if err != nil {
		return nil, err
	}
	if m.pub, err = eventlog.NewPublisher(ctx, js, "KV_"+streams.ReadModelBucket, "readmodel", cfg, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// Close stops the publisher of a writer.
func (m *Model) Close() {
	if m.pub != nil {
		m.pub.Close()
	}
}

// Get returns a student's value and its revision (the compare-and-set of
// Put), ErrMissing, or the error of the read.
func (m *Model) Get(ctx context.Context, student uuid.UUID) (Student, uint64, error) {
	return get(ctx, m, student.String(), Decode)
}

// Put stores s as the student's value provided that the value is still at
// revision rev (0: there is none), and returns its new revision,
// ErrConflict, or an error after which the outcome is unknown (read again).
func (m *Model) Put(ctx context.Context, student uuid.UUID, s *Student, rev uint64) (uint64, error) {
	return m.put(ctx, student.String(), s.Encode(), rev)
}

// Keys of a student's further values, beside the one keyed by the id
// alone: each family's part has its own key, so that a read of one does
// not fetch and decode the others, and each stays under the bucket's
// message size.
const (
	sessionsSuffix = ".sessions"
	checksSuffix   = ".checks"
)

// GetSessions returns a student's exam sessions and their revision,
// ErrMissing, or the error of the read.
func (m *Model) GetSessions(ctx context.Context, student uuid.UUID) (Sessions, uint64, error) {
	return get(ctx, m, student.String()+sessionsSuffix, DecodeSessions)
}

// PutSessions is Put for a student's exam sessions.
func (m *Model) PutSessions(ctx context.Context, student uuid.UUID, s *Sessions, rev uint64) (uint64, error) {
	return m.put(ctx, student.String()+sessionsSuffix, s.Encode(), rev)
}

// GetChecks returns a student's newest checks and their revision,
// ErrMissing, or the error of the read.
func (m *Model) GetChecks(ctx context.Context, student uuid.UUID) (Checks, uint64, error) {
	return get(ctx, m, student.String()+checksSuffix, DecodeChecks)
}

// PutChecks is Put for a student's newest checks.
func (m *Model) PutChecks(ctx context.Context, student uuid.UUID, s *Checks, rev uint64) (uint64, error) {
	return m.put(ctx, student.String()+checksSuffix, s.Encode(), rev)
}

// get reads key's value and decodes it; a value of another version reads
// as missing (with its revision, so that a Put may replace it).
func get[T any](ctx context.Context, m *Model, key string, decode func([]byte) (T, error)) (T, uint64, error) {
	var zero T
	e, err := m.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return zero, 0, ErrMissing
	}
	if err != nil {
		return zero, 0, fmt.Errorf("readmodel: get: %w", err)
	}
	v, err := decode(e.Value())
	if errors.Is(err, errVersion) {
		return zero, e.Revision(), ErrMissing
	}
	return v, e.Revision(), err
}

// put stores data as key's value provided that it is still at revision
// rev (0: there is none).
func (m *Model) put(ctx context.Context, key string, data []byte, rev uint64) (uint64, error) {
	if m.pub == nil {
		return 0, errors.New("readmodel: Put on a model opened for reading")
	}
	msg := &nats.Msg{Subject: "$KV." + streams.ReadModelBucket + "." + key, Data: data,
		Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(rev, 10)}}}
	ack, err := m.pub.Publish(ctx, msg)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("readmodel: put: %w", err)
	}
	return ack.Sequence, nil
}

// Keys calls fn with every student the bucket holds a value (keyed by
// the id alone) of, for rebuilds and tests, or returns the error of the
// listing.
func (m *Model) Keys(ctx context.Context, fn func(uuid.UUID) error) error {
	keys, err := m.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("readmodel: keys: %w", err)
	}
	defer keys.Stop()
	for k := range keys.Keys() {
		id, err := uuid.Parse(k)
		if err != nil {
			continue
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}
