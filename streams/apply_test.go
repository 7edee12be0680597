package streams_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/streams"
)

// fields returns "object field" of each change.
func fields(cs []streams.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Object+" "+c.Field)
	}
	return out
}

// Apply creates everything quizstream needs as configured, and applying
// the same settings again changes nothing.
func TestApplyCreatesThenChangesNothing(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := streams.StreamConfig{MaxBytes: 1 << 20, MaxMsgs: 1000, MaxAge: time.Hour, ReadModel: true}
	res, err := streams.Apply(t.Context(), js, false, streams.Attempts(cfg))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stream ATTEMPTS", "stream ATTEMPTS_DLQ", "consumer attempt-writer", "consumer readmodel", "bucket quizstream_content"}
	if !slices.Equal(res.Created, want) || len(res.Changed) != 0 || len(res.Refused) != 0 || res.Forced {
		t.Fatalf("first apply: %+v, want created %v", res, want)
	}
	s, err := js.Stream(t.Context(), "ATTEMPTS")
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Retention != jetstream.LimitsPolicy || c.Discard != jetstream.DiscardNew || c.Storage != jetstream.FileStorage ||
		c.MaxBytes != 1<<20 || c.MaxMsgs != 1000 || c.MaxAge != time.Hour || c.Duplicates != 2*time.Minute ||
		!c.AllowAtomicPublish || c.AllowDirect || c.Replicas != 1 {
		t.Fatalf("stream config: %+v", c)
	}
	cons, err := js.Consumer(t.Context(), "ATTEMPTS", "attempt-writer")
	if err != nil {
		t.Fatal(err)
	}
	if cc := cons.CachedInfo().Config; cc.AckPolicy != jetstream.AckExplicitPolicy || cc.MaxDeliver != -1 ||
		cc.AckWait != streams.DefaultAckWait || cc.MaxAckPending != streams.DefaultMaxAckPending {
		t.Fatalf("consumer config: %+v", cc)
	}
	dl, err := js.Stream(t.Context(), "ATTEMPTS_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	if c := dl.CachedInfo().Config; c.MaxBytes != streams.DefaultDeadLetterMaxBytes || c.Discard != jetstream.DiscardNew {
		t.Fatalf("dead-letter config: %+v", c)
	}

	res, err = streams.Apply(t.Context(), js, false, streams.Attempts(cfg))
	if err != nil || len(res.Created) != 0 || len(res.Changed) != 0 || len(res.Refused) != 0 {
		t.Fatalf("second apply: %+v, %v; want nothing changed", res, err)
	}
	check, err := streams.Check(t.Context(), js, streams.Attempts(cfg))
	if err != nil || len(check.Mismatches) != 0 || len(check.Missing) != 0 || !check.ContentBucket || check.AckWait["attempt-writer"] != streams.DefaultAckWait {
		t.Fatalf("check after apply: %+v, %v", check, err)
	}
}

// Apply refuses, changing nothing, to lower MaxAge, or MaxBytes or MaxMsgs
// below what the stream holds, unless forced; raising them, or lowering
// MaxBytes to what still holds every event, it does.
func TestApplyRefusesToLowerWhatIsKept(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := streams.StreamConfig{MaxAge: time.Hour, MaxBytes: 1 << 20, MaxMsgs: 1000}
	lg, err := eventlog.NewLog(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := lg.PublishAttempt(t.Context(), eventstest.Attempt(uuid.New(), "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	held, err := lg.Capacity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	config := func() jetstream.StreamConfig {
		s, err := js.Stream(t.Context(), "ATTEMPTS")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config
	}

	for name, tc := range map[string]struct {
		cfg     streams.StreamConfig
		refused []string
	}{
		"shorter max_age":         {streams.StreamConfig{MaxAge: 30 * time.Minute, MaxBytes: 1 << 20, MaxMsgs: 1000}, []string{"stream ATTEMPTS max_age"}},
		"max_bytes below use":     {streams.StreamConfig{MaxAge: time.Hour, MaxBytes: int64(held.Bytes) - 1, MaxMsgs: 1000}, []string{"stream ATTEMPTS max_bytes"}},
		"max_msgs below use":      {streams.StreamConfig{MaxAge: time.Hour, MaxBytes: 1 << 20, MaxMsgs: 9}, []string{"stream ATTEMPTS max_msgs"}},
		"all three, and ack_wait": {streams.StreamConfig{MaxAge: time.Minute, Duplicates: time.Minute, MaxBytes: 100, MaxMsgs: 2, AckWait: time.Minute}, []string{"stream ATTEMPTS max_age", "stream ATTEMPTS max_bytes", "stream ATTEMPTS max_msgs"}},
	} {
		res, err := streams.Apply(t.Context(), js, false, streams.Attempts(tc.cfg))
		if !errors.Is(err, streams.ErrRefused) || !slices.Equal(fields(res.Refused), tc.refused) || len(res.Changed) != 0 {
			t.Errorf("%s: %+v, %v; want refused %v and nothing changed", name, res, err, tc.refused)
		}
		for _, r := range res.Refused {
			if r.Reason == "" || r.Was == r.Now {
				t.Errorf("%s: refusal %+v says nothing", name, r)
			}
		}
		if c := config(); c.MaxAge != time.Hour || c.MaxBytes != 1<<20 || c.MaxMsgs != 1000 {
			t.Fatalf("%s: a refused apply changed the stream: %+v", name, c)
		}
		if cons, _ := js.Consumer(t.Context(), "ATTEMPTS", "attempt-writer"); cons.CachedInfo().Config.AckWait != streams.DefaultAckWait {
			t.Fatalf("%s: a refused apply changed the consumer", name)
		}
	}

	// Raising, or lowering MaxBytes while it still holds every event, needs no force.
	res, err := streams.Apply(t.Context(), js, false, streams.Attempts(streams.StreamConfig{MaxAge: 2 * time.Hour, MaxBytes: int64(held.Bytes) + 1000, MaxMsgs: 2000}))
	if err != nil || !slices.Equal(fields(res.Changed), []string{"stream ATTEMPTS max_age", "stream ATTEMPTS max_bytes", "stream ATTEMPTS max_msgs"}) {
		t.Fatalf("raising: %+v, %v", res, err)
	}
	if c := config(); c.MaxAge != 2*time.Hour || c.MaxMsgs != 2000 {
		t.Fatalf("raising did not apply: %+v", c)
	}

	// Forced, a lower MaxAge is applied, and said so.
	res, err = streams.Apply(t.Context(), js, true, streams.Attempts(streams.StreamConfig{MaxAge: time.Minute, Duplicates: time.Minute, MaxBytes: 1 << 20, MaxMsgs: 2000}))
	if err != nil || !res.Forced || !slices.Equal(fields(res.Refused), []string{"stream ATTEMPTS max_age"}) {
		t.Fatalf("forced: %+v, %v", res, err)
	}
	if c := config(); c.MaxAge != time.Minute {
		t.Fatalf("forced apply did not lower max_age: %+v", c)
	}
}

// Check finds what differs and says which mismatches a process must not
// start with; a stream nobody applied is ErrNotApplied.
func TestCheck(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := streams.StreamConfig{ReadModel: true}
	if _, err := streams.Check(t.Context(), js, streams.Attempts(cfg)); !errors.Is(err, streams.ErrNotApplied) {
		t.Fatalf("check of a missing stream: %v, want ErrNotApplied", err)
	}
	if _, err := eventlog.OpenLog(t.Context(), js, cfg); !errors.Is(err, streams.ErrNotApplied) {
		t.Fatalf("open of a missing stream: %v, want ErrNotApplied", err)
	}
	// A stream made by hand: discard old (a full stream deletes the oldest
	// events), no atomic batches, another MaxAge.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "ATTEMPTS", Subjects: []string{events.SubjectPrefix + ".>"}, Storage: jetstream.FileStorage,
		Discard: jetstream.DiscardOld, MaxAge: time.Hour, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Check(t.Context(), js, streams.Attempts(cfg)); !errors.Is(err, streams.ErrNotApplied) {
		t.Fatalf("check without the consumer: %v, want ErrNotApplied", err)
	}
	if _, err := streams.EnsureConsumer(t.Context(), js, streams.StreamConfig{AckWait: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Check(t.Context(), js, streams.Attempts(cfg)); !errors.Is(err, streams.ErrNotApplied) {
		t.Fatalf("check without the read model's consumer: %v, want ErrNotApplied", err)
	}
	if _, err := js.CreateOrUpdateConsumer(t.Context(), "ATTEMPTS", jetstream.ConsumerConfig{Durable: streams.ReadModelConsumer,
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1}); err != nil {
		t.Fatal(err)
	}
	res, err := streams.Check(t.Context(), js, streams.Attempts(cfg))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range res.Mismatches {
		got[m.Object+" "+m.Field] = m.Fatal
	}
	for field, fatal := range map[string]bool{
		"stream ATTEMPTS discard": true, "stream ATTEMPTS max_age": false, "stream ATTEMPTS allow_atomic": false,
		"stream ATTEMPTS max_bytes": false, "stream ATTEMPTS duplicates": false, "consumer attempt-writer ack_wait": false,
	} {
		if f, ok := got[field]; !ok || f != fatal {
			t.Errorf("mismatch %s: found %t (fatal %t), want fatal %t", field, ok, f, fatal)
		}
	}
	if fatal := res.Fatal(); len(fatal) != 1 || fatal[0].Field != "discard" || fatal[0].Was != "DiscardOld" {
		t.Errorf("fatal mismatches: %+v, want the discard policy", fatal)
	}
	if res.AckWait["attempt-writer"] != 10*time.Second || !slices.Equal(res.Missing, []string{"stream ATTEMPTS_DLQ"}) || res.ContentBucket {
		t.Errorf("check: %+v", res)
	}
}

// The workers' consumer of earlier versions filtered on the stream's own
// subject: the same messages, so a process starts with it (a warning),
// and Apply drops it, keeping the consumer's position.
func TestApplyDropsTheConsumersOldFilter(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := streams.StreamConfig{}
	lg, err := eventlog.NewLog(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := lg.PublishAttempt(t.Context(), eventstest.Attempt(uuid.New(), "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := lg.Consumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	old := cons.CachedInfo().Config
	if old.FilterSubject != "" {
		t.Fatalf("the consumer filters on %q, want no filter", old.FilterSubject)
	}
	old.FilterSubject = events.SubjectPrefix + ".>"
	if _, err := js.UpdateConsumer(t.Context(), "ATTEMPTS", old); err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	res, err := streams.Check(t.Context(), js, streams.Attempts(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Mismatches) != 1 || res.Mismatches[0].Field != "filter_subject" || res.Mismatches[0].Fatal {
		t.Fatalf("check: %+v, want the old filter alone, not fatal", res.Mismatches)
	}
	applied, err := streams.Apply(t.Context(), js, false, streams.Attempts(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(applied.Changed) != 1 || applied.Changed[0].Field != "filter_subject" {
		t.Fatalf("apply changed %+v, want the filter", applied.Changed)
	}
	info, err := js.Consumer(t.Context(), "ATTEMPTS", old.Durable)
	if err != nil {
		t.Fatal(err)
	}
	if f := info.CachedInfo(); f.Config.FilterSubject != "" || f.AckFloor.Stream != 1 || f.NumPending != 2 {
		t.Fatalf("after apply: filter %q, ack floor %d, pending %d; want none, 1, 2", f.Config.FilterSubject, f.AckFloor.Stream, f.NumPending)
	}
	if res, err := streams.Check(t.Context(), js, streams.Attempts(cfg)); err != nil || len(res.Mismatches) != 0 {
		t.Fatalf("check after apply: %+v, %v", res.Mismatches, err)
	}
}

// Status reports the settings, the fill against the limits, and the lag
// of the consumer.
func TestStatus(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	cfg := streams.StreamConfig{MaxAge: time.Hour, MaxBytes: 1 << 20, MaxMsgs: 10}
	lg, err := eventlog.NewLog(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := lg.PublishAttempt(t.Context(), eventstest.Attempt(uuid.New(), "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // an age to measure
	st, err := streams.Status(t.Context(), js, streams.Attempts(streams.StreamConfig{MaxAge: 2 * time.Hour, MaxBytes: 1 << 20, MaxMsgs: 10}))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := st.Family("attempts")
	if !ok || len(f.Streams) != 2 || len(f.Consumers) != 1 || len(f.Missing) != 0 {
		t.Fatalf("attempts family: %+v", f)
	}
	s := f.Streams[0]
	if s.Name != "ATTEMPTS" || s.Replicas != 1 || s.Storage != "File" || s.Retention != "Limits" || s.Discard != "DiscardNew" ||
		s.MaxAge != time.Hour || !s.AllowAtomicPublish || s.FirstSeq != 1 || s.LastSeq != 4 {
		t.Errorf("stream: %+v", s)
	}
	if c := s.Capacity; c.Messages != 4 || c.Subjects != 4 || c.MaxMessages != 10 || c.MaxBytes != 1<<20 ||
		c.Bytes == 0 || c.Fill() != 0.4 || c.Full() {
		t.Errorf("capacity: %+v fill %v", c, c.Fill())
	}
	if c := f.Consumers[0]; c.AckFloor != 0 || c.Lag != 4 || c.Pending != 4 || c.OldestUnacked <= 0 ||
		c.OldestUnacked > time.Minute || c.MaxDeliver != -1 || c.AckWait != streams.DefaultAckWait {
		t.Errorf("consumer: %+v", f.Consumers[0])
	}
	if dl := f.Streams[1]; dl.Name != "ATTEMPTS_DLQ" || dl.Capacity.Messages != 0 || dl.Capacity.MaxBytes != streams.DefaultDeadLetterMaxBytes {
		t.Errorf("dead letters: %+v", dl)
	}
	if len(st.Mismatches) != 1 || st.Mismatches[0].Field != "max_age" || st.Mismatches[0].Was != "1h0m0s" || st.Mismatches[0].Now != "2h0m0s" {
		t.Errorf("mismatches: %+v, want max_age 1h found, 2h configured", st.Mismatches)
	}
}

func TestCapacity(t *testing.T) {
	for _, tc := range []struct {
		c    streams.Capacity
		fill float64
		full bool
	}{
		{streams.Capacity{}, 0, false},
		{streams.Capacity{Bytes: 500 << 10, MaxBytes: 1 << 20}, 500.0 / 1024, false},
		{streams.Capacity{Bytes: 1<<20 - streams.FullMargin + 1, MaxBytes: 1 << 20}, float64(1<<20-streams.FullMargin+1) / (1 << 20), true},
		{streams.Capacity{Messages: 9, MaxMessages: 10, Bytes: 1, MaxBytes: 1 << 30}, 0.9, false},
		{streams.Capacity{Messages: 10, MaxMessages: 10}, 1, true},
		{streams.Capacity{Messages: 10, MaxMessages: -1, Bytes: 10, MaxBytes: -1}, 0, false},
	} {
		if got := tc.c.Fill(); got != tc.fill || tc.c.Full() != tc.full {
			t.Errorf("%+v: fill %v full %t, want %v %t", tc.c, got, tc.c.Full(), tc.fill, tc.full)
		}
	}
}

// A stream full by bytes or by messages refuses a publish with an error
// IsStreamFull recognises, singly and in an atomic batch; other errors
// are not "full".
func TestIsStreamFull(t *testing.T) {
	for name, cfg := range map[string]streams.StreamConfig{
		"max_bytes": {MaxBytes: 8 << 10},
		"max_msgs":  {MaxMsgs: 5},
	} {
		_, js := eventstest.Connect(t, eventstest.NewServer(t))
		lg, err := eventlog.NewLog(t.Context(), js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var refused error
		for i := 0; i < 100 && refused == nil; i++ {
			_, refused = lg.PublishAttempt(t.Context(), eventstest.Attempt(uuid.New(), "", []events.Answer{{QuestionID: uuid.NewString(), ChoiceID: uuid.NewString()}}))
		}
		if !eventlog.IsStreamFull(refused) {
			t.Fatalf("%s: a full stream refused with %v, not recognised as full", name, refused)
		}
		if c, err := lg.Capacity(t.Context()); err != nil || !c.Full() {
			t.Errorf("%s: capacity of a full stream: %+v, %v", name, c, err)
		}
		b, err := eventlog.NewBatcher(t.Context(), lg, eventlog.BatchConfig{MinMessages: 2, Window: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, err := b.PublishAttempt(t.Context(), eventstest.Attempt(uuid.New(), "", nil))
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; !eventlog.IsStreamFull(err) {
				t.Errorf("%s: a batch into a full stream: %v, not recognised as full", name, err)
			}
		}
		b.Close()
	}
	if eventlog.IsStreamFull(errors.New("maximum bytes exceeded")) || eventlog.IsStreamFull(&jetstream.APIError{ErrorCode: 10077, Description: "no space left on device"}) {
		t.Fatal("IsStreamFull took another error for a full stream")
	}
}

// Apply, Check and Status cover every declared family: one apply creates
// the streams and consumers of attempts, exams and checks, status shows them, and
// a process's check refuses a missing stream of either, naming its family.
func TestEveryFamily(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NewServer(t))
	families := streams.Declared(streams.StreamConfig{}, streams.ExamStreamConfig{}, streams.CheckStreamConfig{})
	res, err := streams.Apply(t.Context(), js, false, families...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stream ATTEMPTS", "stream ATTEMPTS_DLQ", "stream EXAMS", "stream EXAM_TIMERS", "stream CHECKS", "stream KV_quizstream_students",
		"consumer attempt-writer", "consumer exam-writer", "consumer exam-finalizer", "consumer check-writer", "consumer checker",
		"bucket quizstream_content"}
	if !slices.Equal(res.Created, want) {
		t.Fatalf("created %v, want %v", res.Created, want)
	}
	st, err := streams.Status(t.Context(), js, families...)
	if err != nil {
		t.Fatal(err)
	}
	for name, streams := range map[string]int{"attempts": 2, "exams": 2, "readmodel": 1} {
		f, ok := st.Family(name)
		if !ok || len(f.Streams) != streams || len(f.Missing) != 0 {
			t.Errorf("status of %s: %+v", name, f)
		}
	}
	if f, _ := st.Family("exams"); len(f.Consumers) != 2 || f.Consumers[0].Name != "exam-writer" || f.Consumers[1].Stream != "EXAM_TIMERS" {
		t.Errorf("exams consumers: %+v", f.Consumers)
	}
	if f, ok := st.Family("checks"); !ok || len(f.Streams) != 1 || len(f.Consumers) != 2 || f.Consumers[1].Name != "checker" {
		t.Errorf("status of checks: %+v", f)
	}
	check, err := streams.Check(t.Context(), js, families...)
	if err != nil || len(check.Mismatches) != 0 || check.AckWait["exam-finalizer"] != streams.DefaultFinalizerAckWait ||
		check.AckWait["checker"] != streams.DefaultCheckerAckWait {
		t.Fatalf("check: %+v, %v", check, err)
	}
	if err := js.DeleteStream(t.Context(), "EXAM_TIMERS"); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Check(t.Context(), js, families...); !errors.Is(err, streams.ErrNotApplied) || !strings.Contains(err.Error(), "exams") {
		t.Fatalf("check without EXAM_TIMERS: %v, want ErrNotApplied naming exams", err)
	}
	st, err = streams.Status(t.Context(), js, families...)
	if f, _ := st.Family("exams"); err != nil || !slices.Equal(f.Missing, []string{"stream EXAM_TIMERS", "consumer exam-finalizer"}) {
		t.Fatalf("status without EXAM_TIMERS: %+v, %v", f, err)
	}
}
