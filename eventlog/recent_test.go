package eventlog_test

import (
	"testing"
	"time"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
)

// A re-send of an attempt this Batcher published goes alone, not in the
// batch it joined: no batch is refused for it, inside the duplicate window
// (Nats-Msg-Id) or past it (the subject guard), and it is answered with
// its original.
func TestBatcherSendsItsOwnResendsAlone(t *testing.T) {
	window := 500 * time.Millisecond
	h := newBatcher(t, streams.StreamConfig{Duplicates: window}, eventlog.BatchConfig{MaxMessages: 3, MinMessages: 2, Window: time.Minute})
	origs := freshEvents(3)
	first := publishAll(t.Context(), h.b, origs)
	for i, r := range first {
		if r.err != nil || r.pub.Duplicate {
			t.Fatalf("original %d: %+v, %v", i, r.pub, r.err)
		}
	}
	held := uint64(3)
	for round, i := range []int{0, 1} {
		if round == 1 {
			time.Sleep(2 * window) // past the window: the subject guard decides
		}
		fresh := freshEvents(2)
		res := publishAll(t.Context(), h.b, []events.AttemptSubmitted{fresh[0], origs[i], fresh[1]})
		got := res[1]
		if got.err != nil || !got.pub.Duplicate || got.pub.Seq != first[i].pub.Seq || got.pub.Event.AttemptID != origs[i].AttemptID {
			t.Fatalf("round %d: the re-send: %+v, %v; want the original at seq %d", round, got.pub, got.err, first[i].pub.Seq)
		}
		for j, r := range []result{res[0], res[2]} {
			if r.err != nil || r.pub.Duplicate {
				t.Fatalf("round %d: fresh attempt %d: %+v, %v", round, j, r.pub, r.err)
			}
		}
		checkStored(t, h.js, fresh, []result{res[0], res[2]})
		held += 2
		if n := eventstest.StreamMessages(t, h.js, "ATTEMPTS"); n != held {
			t.Fatalf("round %d: the stream holds %d messages, want %d", round, n, held)
		}
		st := h.stats(t)
		if st.resends != 0 || st.alone != float64(round+1) || st.unbatched != float64(round+1) || st.batches != float64(round+2) {
			t.Fatalf("round %d: metrics %+v; want no batch refused, the re-send alone", round, st)
		}
	}
}
