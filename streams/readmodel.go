package streams

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadModelBucket is the key-value bucket of the student read model
// (package readmodel): one key per student, its id, and one per student
// and family for exam sessions and checks ("<id>.sessions", "<id>.checks").
const ReadModelBucket = "quizstream_students"

// ReadModelConsumer is the durable consumer on the attempts stream that
// folds what the writers settled into the read model (the attempts
// family declares it): its own, so that the model may lag the writers,
// and fold many events of a student into one put, without holding their
// acknowledgements (the API's tail covers the lag).
const ReadModelConsumer = "readmodel"

// Defaults of the read model's settings in StreamConfig, named once: the
// binary's settings use them too. Sized for a million students
// (docs/operations.md, "Read model").
const (
	// DefaultReadModelMaxBytes holds a million students of about 5 KB
	// each (a page of 21 attempts and 20 quizzes' progress, measured) with
	// room.
	DefaultReadModelMaxBytes = int64(8 << 30)
	// DefaultReadModelTTL is a term: a student not written for this long
	// drops out of the model and is read from PostgreSQL until a worker
	// folds their next attempt (which builds their value again).
	DefaultReadModelTTL = 120 * 24 * time.Hour
)

// readModelStream is the stream behind ReadModelBucket, as a key-value
// bucket of history 1 is: one message per key, direct gets (any replica
// answers), rollups, no deletes. Its values are projections, rebuilt from
// the streams and PostgreSQL (`quizstream replay --rebuild readmodel`), so
// a full bucket discards its least recently written students (DiscardOld):
// they fall back to PostgreSQL; it never refuses a worker's fold.
func readModelStream(cfg StreamConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + ReadModelBucket,
		Description:       "quizstream read model: each student's progress and newest attempts, for the API's reads",
		Subjects:          []string{"$KV." + ReadModelBucket + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		MaxAge:            cfg.ReadModelTTL,
		MaxBytes:          cfg.ReadModelMaxBytes,
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        64 << 10,
		Duplicates:        2 * time.Minute,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       true,
		// The workers' folds of one batch go as one atomic batch (one
		// sync), each message with its compare-and-set.
		AllowAtomicPublish: true,
	}
}

// ReadModel declares the read model: the stream of its bucket. Optional:
// an API instance without it reads PostgreSQL (every read counted as a
// fallback); a worker refuses to start without it, since it must fold
// what it stores.
func ReadModel(cfg StreamConfig) Family {
	err := cfg.Validate()
	return Family{
		Name: "readmodel",
		Streams: []Stream{{Config: readModelStream(cfg), Optional: true,
			Fatal: []string{"subjects", "allow_direct"}}},
		err: err,
	}
}
