package eventlog_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/natsserver"
	"github.com/quizstream/quizstream/streams"
)

// BenchmarkSubjectMemory measures what the embedded server (in this
// process) keeps in its heap per attempt held: 200,000 attempts on
// distinct subjects, as quizstream publishes them, against as many on one
// subject, and what is left once MaxAge removed them. Run it once:
//
//	go test ./events -run X -bench SubjectMemory -benchtime 1x
//
// docs/operations.md ("Sizing") quotes its figures.
func BenchmarkSubjectMemory(b *testing.B) {
	const n = 200_000
	heap := func() int64 {
		var m runtime.MemStats
		for range 3 {
			runtime.GC()
			time.Sleep(100 * time.Millisecond)
		}
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	// measure publishes n attempts and returns the heap's growth per
	// attempt, and per attempt left once MaxAge (when short) removed them.
	measure := func(distinct bool, maxAge time.Duration) (held, left float64) {
		ns := eventstest.StartServer(b, natsserver.ServerConfig{Dir: b.TempDir()})
		nc, js := eventstest.Connect(b, ns)
		defer nc.Close()
		lg, err := eventlog.NewLog(b.Context(), js, streams.StreamConfig{MaxAge: maxAge, Duplicates: min(maxAge, time.Minute), MaxMsgs: 2 * n})
		if err != nil {
			b.Fatal(err)
		}
		before := heap()
		student := uuid.New()
		e := eventstest.Attempt(student, "", []events.Answer{{QuestionID: uuid.NewString(), ChoiceID: uuid.NewString()}})
		data, _ := events.Encode(e)
		subject := e.Subject()
		for i := range n {
			if distinct {
				if i%20 == 0 {
					student = uuid.New()
				}
				subject = events.AttemptSubject(student, uuid.New())
			}
			if _, err := js.PublishAsync(subject, data); err != nil {
				b.Fatal(err)
			}
			if i%2000 == 1999 {
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
		held = float64(heap()-before) / n
		if maxAge >= time.Hour {
			return held, 0
		}
		deadline := time.Now().Add(maxAge + time.Minute)
		for {
			c, err := lg.Capacity(b.Context())
			if err == nil && c.Messages == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		return held, float64(heap()-before) / n
	}
	for b.Loop() {
		distinct, _ := measure(true, 24*time.Hour)
		one, _ := measure(false, 24*time.Hour)
		_, left := measure(true, 20*time.Second)
		b.ReportMetric(distinct, "B/attempt-distinct-subjects")
		b.ReportMetric(one, "B/attempt-one-subject")
		b.ReportMetric(left, "B/attempt-after-max-age")
	}
}
