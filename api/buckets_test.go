package api

import (
	"testing"
	"time"
)

// A failure charged after the fact goes into debt, at most a burst deep,
// and peek tells how long the debt takes to repay; a key whose bucket has
// refilled is swept, one still in debt is kept.
func TestBucketsDebtAndSweep(t *testing.T) {
	b, err := newBuckets(1, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, full := b.peek("a"); !ok || !full {
		t.Fatalf("an unseen key: ok %v full %v, want a full bucket", ok, full)
	}
	if b.keys.Len() != 0 {
		t.Errorf("peek remembered %d keys; want none", b.keys.Len())
	}
	b.charge("a")
	if ok, _, full := b.peek("a"); !ok || full {
		t.Errorf("after one failure of a burst of 2: ok %v full %v, want a token left and not full", ok, full)
	}
	for range 10 {
		b.charge("a")
	}
	ok, wait, _ := b.peek("a")
	// 11 charges on a burst of 2 end at a debt of 2: 3 tokens short of one.
	if ok || wait < 2900*time.Millisecond || wait > 3*time.Second {
		t.Errorf("after 11 failures: ok %v, wait %s; want refused for about 3s (a debt of one burst)", ok, wait)
	}
	b.charge("b")
	b.sweep(time.Now())
	if b.keys.Len() != 2 {
		t.Errorf("a sweep now kept %d keys, want both (neither has refilled)", b.keys.Len())
	}
	b.sweep(time.Now().Add(time.Hour))
	if b.keys.Len() != 0 {
		t.Errorf("a sweep an hour on kept %d keys, want none", b.keys.Len())
	}
}
