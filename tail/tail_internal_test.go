package tail

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Reads that arrive while a lookup is in flight share the next one, never
// the one in flight, which may have started before their write.
func TestPositionRoundsNeverAnswerFromAnEarlierRound(t *testing.T) {
	var lookups atomic.Uint64
	var wg sync.WaitGroup
	release := make(chan struct{})
	p := positionRounds{ctx: t.Context(), wg: &wg, lookup: func(context.Context) (uint64, error) {
		n := lookups.Add(1) // the "position" is the round's number
		<-release
		return n, nil
	}}
	defer wg.Wait()
	first := make(chan uint64)
	go func() { seq, _ := p.position(t.Context()); first <- seq }()
	for lookups.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Round 1 is in flight: these 50 arrive after it began.
	var readers sync.WaitGroup
	got := make(chan uint64, 50)
	for range 50 {
		readers.Add(1)
		go func() { defer readers.Done(); seq, _ := p.position(t.Context()); got <- seq }()
	}
	time.Sleep(20 * time.Millisecond) // let them queue; correctness does not depend on it
	close(release)
	if seq := <-first; seq != 1 {
		t.Fatalf("first read got round %d", seq)
	}
	readers.Wait()
	close(got)
	for seq := range got {
		if seq < 2 {
			t.Fatalf("a read that arrived during round 1 was answered by round %d", seq)
		}
	}
	if n := lookups.Load(); n > 3 {
		t.Fatalf("%d lookups for 51 reads: rounds are not shared", n)
	}
}
