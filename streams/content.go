package streams

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ContentBucket is the object store that keeps a copy of the content
// snapshot in NATS, so that an API instance can start (and grade attempts)
// while PostgreSQL is down.
const ContentBucket = "quizstream_content"

// contentObject is the one object of ContentBucket.
const contentObject = "snapshot"

// contentVersionKey is the object's metadata key holding the snapshot's version.
const contentVersionKey = "version"

// ErrNoContent means the content bucket holds no snapshot yet.
var ErrNoContent = errors.New("no content snapshot in NATS")

// applyContentBucket creates or updates the content bucket and reports
// whether it created it.
func applyContentBucket(ctx context.Context, js jetstream.JetStream, replicas int) (bool, error) {
	_, err := js.ObjectStore(ctx, ContentBucket)
	created := errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
	if err != nil && !created {
		return false, fmt.Errorf("bucket %s: %w", ContentBucket, err)
	}
	_, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ContentBucket,
		Description: "quizstream content snapshot, for API instances starting while PostgreSQL is down",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxBytes:    256 << 20,
	})
	if err != nil {
		return false, fmt.Errorf("apply bucket %s: %w", ContentBucket, err)
	}
	return created, nil
}

// ContentSnapshots is the copy of the content snapshot kept in NATS: the
// encoded content (the store's encoding; events does not read it). It is
// safe for concurrent use.
type ContentSnapshots struct {
	js jetstream.JetStream
}

// NewContentSnapshots returns the content copy on js. It looks nothing up:
// a missing bucket is an error of Load and Save.
func NewContentSnapshots(js jetstream.JetStream) *ContentSnapshots {
	return &ContentSnapshots{js: js}
}

func (c *ContentSnapshots) bucket(ctx context.Context) (jetstream.ObjectStore, error) {
	obs, err := c.js.ObjectStore(ctx, ContentBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("bucket %s: %w", ContentBucket, ErrNotApplied)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", ContentBucket, err)
	}
	return obs, nil
}

// Load returns the snapshot kept in NATS and its version (the SHA-256 of
// its bytes), ErrNoContent
// when there is none, or the error of the lookup.
func (c *ContentSnapshots) Load(ctx context.Context) (data []byte, version string, err error) {
	obs, err := c.bucket(ctx)
	if err != nil {
		return nil, "", err
	}
	info, err := obs.GetInfo(ctx, contentObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, "", ErrNoContent
	}
	if err != nil {
		return nil, "", fmt.Errorf("content snapshot: %w", err)
	}
	data, err = obs.GetBytes(ctx, contentObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, "", ErrNoContent
	}
	if err != nil {
		return nil, "", fmt.Errorf("content snapshot: %w", err)
	}
	return data, info.Metadata[contentVersionKey], nil
}

// Save keeps data as the snapshot, unless the bucket holds the same bytes
// already (its version is their SHA-256); it reports whether it wrote, or
// returns the error.
func (c *ContentSnapshots) Save(ctx context.Context, data []byte) (bool, error) {
	sum := sha256.Sum256(data)
	version := hex.EncodeToString(sum[:])
	obs, err := c.bucket(ctx)
	if err != nil {
		return false, err
	}
	if info, err := obs.GetInfo(ctx, contentObject); err == nil && info.Metadata[contentVersionKey] == version {
		return false, nil
	}
	_, err = obs.Put(ctx, jetstream.ObjectMeta{
		Name:     contentObject,
		Metadata: map[string]string{contentVersionKey: version},
	}, bytes.NewReader(data))
	if err != nil {
		return false, fmt.Errorf("save content snapshot: %w", err)
	}
	return true, nil
}
