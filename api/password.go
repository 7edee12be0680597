package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/argon2"
)

// argon2id parameters (RFC 9106 / OWASP's minimum for argon2id): 19 MiB,
// 2 passes, 1 lane. They are stored with each hash, so raising them later
// leaves old hashes verifiable.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonMinKeyLen = 16   // of a hash verify accepts
	argonMaxKeyLen = 1024 // of a hash verify accepts
	argonSaltLen   = 16
)

// hasher bounds concurrent argon2id computations: each takes a core and
// argonMemoryKiB of memory for tens of milliseconds, so a login flood must
// take neither the cores nor the memory the rest of the API needs. A hash
// waits at most wait for a slot: past it the client gets 503 with
// Retry-After, and the queue of waiting logins cannot grow without end.
type hasher struct {
	// memKiB and passes are the parameters of new hashes: argonMemoryKiB
	// and argonTime, lower only in tests whose subject is not hashing.
	memKiB, passes uint32
	slots          chan struct{}
	wait           time.Duration          // 0: as long as ctx allows
	metrics        *prometheus.CounterVec // by result; nil: none
}

func newHasher(concurrency int) *hasher {
	return &hasher{memKiB: argonMemoryKiB, passes: argonTime, slots: make(chan struct{}, concurrency)}
}

// errHashBusy answers a signup or login that found no hashing slot in time.
var errHashBusy = &Error{http.StatusServiceUnavailable, "unavailable", "the server is busy checking passwords; retry shortly"}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	var timeout <-chan time.Time
	if h.wait > 0 {
		t := time.NewTimer(h.wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timeout:
		h.count("refused")
		return errHashBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) count(result string) {
	if h.metrics != nil {
		h.metrics.WithLabelValues(result).Inc()
	}
}

func (h *hasher) release() { <-h.slots }

// hash returns password's argon2id hash in the PHC string format.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	var key []byte
	if err := h.run(ctx, func() {
		key = argon2.IDKey([]byte(password), salt, h.passes, h.memKiB, argonThreads, argonKeyLen)
	}); err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.memKiB, h.passes, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

var errBadHash = errors.New("malformed password hash")

// run computes f, a hash, in a slot. When ctx ends first (the handlers'
// deadline), run returns its error at once: the hash goes on, since it
// cannot be stopped, and gives the slot back when done, so the slots
// still bound the CPU and memory hashes take. (Hashes run at the
// runtime's one priority: a thread with a lowered one would hold up every
// stop-the-world of the garbage collector, and so the whole API, whenever
// other processes keep the CPUs busy.)
func (h *hasher) run(ctx context.Context, f func()) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		f()
		h.release()
		h.count("hashed")
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// verify reports whether password matches encoded, a hash made by hash.
func (h *hasher) verify(ctx context.Context, password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	var mem, iter uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil {
		return false, errBadHash
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return false, errBadHash
	}
	// Hashes are made with argonKeyLen bytes; the bounds refuse an empty key,
	// which any password would match, and one too long to compute.
	n := len(want)
	if n < argonMinKeyLen || n > argonMaxKeyLen {
		return false, errBadHash
	}
	keyLen := uint32(n)
	var got []byte
	if err := h.run(ctx, func() {
		got = argon2.IDKey([]byte(password), salt, iter, mem, threads, keyLen)
	}); err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
