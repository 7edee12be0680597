package eventlog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
)

// BenchmarkPublish compares durable publishes of attempts one at a time
// ((*Log).PublishAttempt) and coalesced into atomic batches (a Batcher), at
// equal durability: an R1 stream on a server that syncs every write before
// acknowledging it. Each op is one attempt published by one of conc
// concurrent callers, as the API's handlers would (a closed loop: each
// caller publishes its next attempt once the last is acknowledged, so a
// batch holds at most about callers/2). events/s is the figure to compare;
// the coalesced path also reports its mean batch size. Everything else
// (server, stream, events, encoding, callers) is shared.
//
//	go test ./events -run '^$' -bench Publish -benchtime=20000x -count=3
func BenchmarkPublish(b *testing.B) {
	for _, conc := range []int{256, 1024} {
		for _, path := range []string{"per-message", "coalesced"} {
			b.Run(fmt.Sprintf("callers=%d/%s", conc, path), func(b *testing.B) { benchmarkPublish(b, conc, path == "coalesced") })
		}
	}
}

// BenchmarkPublishResends is the coalesced path with a 5% re-send rate:
// a caller publishes a share of its attempts again at once, as a client
// that lost the 202 would, with no index to answer it (the API's tail
// lagging). It reports events/s (first sends) and the share of atomic
// batches refused for holding a duplicate.
//
//	go test ./eventlog -run '^$' -bench PublishResends -benchtime=20000x
func BenchmarkPublishResends(b *testing.B) {
	benchmarkPublishWith(b, 256, true, 0.05)
}

func benchmarkPublish(b *testing.B, conc int, coalesced bool) {
	benchmarkPublishWith(b, conc, coalesced, 0)
}

func benchmarkPublishWith(b *testing.B, conc int, coalesced bool, resend float64) {
	ctx := b.Context()
	_, js := eventstest.Connect(b, eventstest.NewServer(b))
	lg, err := eventlog.NewLog(ctx, js, streams.StreamConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var pub interface {
		PublishAttempt(context.Context, events.AttemptSubmitted) (eventlog.Published, error)
	} = lg
	reg := prometheus.NewRegistry()
	if coalesced {
		bt, err := eventlog.NewBatcher(ctx, lg, eventlog.BatchConfig{})
		if err != nil {
			b.Fatal(err)
		}
		defer bt.Close()
		reg.MustRegister(eventlog.NewBatchCollector(bt))
		pub = bt
	}
	evs := make([]events.AttemptSubmitted, b.N)
	for i := range evs {
		evs[i] = eventstest.Attempt(uuid.New(), strconv.Itoa(i), []events.Answer{{QuestionID: "q1", ChoiceID: "a"}, {QuestionID: "q2", ChoiceID: "b"}})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range conc {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(evs)); i = next.Add(1) - 1 {
				p, err := pub.PublishAttempt(ctx, evs[i])
				if err != nil || p.Duplicate {
					b.Errorf("publish %d: %+v, %v", i, p, err)
					return
				}
				if resend > 0 && rand.Float64() < resend {
					again, err := pub.PublishAttempt(ctx, evs[i])
					if err != nil || !again.Duplicate || again.Seq != p.Seq {
						b.Errorf("re-send %d: %+v, %v; want the original at %d", i, again, err, p.Seq)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if coalesced {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		var batches, refused float64
		for _, mf := range mfs {
			m := mf.GetMetric()[0]
			switch mf.GetName() {
			case "quizstream_publish_batch_size_messages":
				if h := m.GetHistogram(); h.GetSampleCount() > 0 {
					batches = float64(h.GetSampleCount())
					b.ReportMetric(h.GetSampleSum()/batches, "msgs/batch")
				}
			case "quizstream_publish_batch_resends_total":
				refused = m.GetCounter().GetValue()
			}
		}
		if resend > 0 && batches > 0 {
			// Each refused batch that was sent again counts twice in
			// batches: the refused send and its re-send.
			b.ReportMetric(refused/(batches-refused), "refused/batch")
		}
	}
	if n := eventstest.StreamMessages(b, js, "ATTEMPTS"); n != uint64(b.N) {
		b.Fatalf("the stream holds %d events, want %d", n, b.N)
	}
}
