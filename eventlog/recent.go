package eventlog

import (
	"hash/maphash"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// recentIDs is how many message ids a Publisher remembers having sent: a
// minute of a busy instance's publishes, enough for a client's re-send
// after a lost answer.
const recentIDs = 1 << 16

// recent is the message ids a Publisher sent lately, as hashes in a ring:
// a message whose id it holds is most likely a re-send of one the stream
// holds, which would get a whole atomic batch refused (the server refuses
// a batch for one message that fails its guard). Such a message goes
// alone instead, and gets the server's own answer. A hash collision only
// sends a fresh message alone.
type recent struct {
	seed maphash.Seed

	mu   sync.Mutex
	ids  map[uint64]int // hash -> occurrences in ring
	ring []uint64
	next int
}

func newRecent() *recent {
	return &recent{seed: maphash.MakeSeed(), ids: make(map[uint64]int), ring: make([]uint64, 0, recentIDs)}
}

// split returns the requests whose message id was not sent lately (the
// batch) and those whose was (to go alone), remembering every id of
// batch and alone as sent.
func (s *recent) split(msgs []*request) (batch, alone []*request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range msgs {
		id := r.msg.Header.Get(jetstream.MsgIDHeader)
		if id == "" {
			batch = append(batch, r)
			continue
		}
		h := maphash.String(s.seed, id)
		if s.ids[h] > 0 {
			alone = append(alone, r)
			continue
		}
		batch = append(batch, r)
		s.add(h)
	}
	return batch, alone
}

// add remembers h, forgetting the oldest id once the ring is full; s.mu
// is held.
func (s *recent) add(h uint64) {
	if len(s.ring) < recentIDs {
		s.ring = append(s.ring, h)
	} else {
		old := s.ring[s.next]
		if s.ids[old]--; s.ids[old] <= 0 {
			delete(s.ids, old)
		}
		s.ring[s.next] = h
		s.next = (s.next + 1) % recentIDs
	}
	s.ids[h]++
}
