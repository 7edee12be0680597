package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream settings have one owner (docs/operations.md, "Stream settings"):
// Apply, which `quizstream stream apply` runs, creates and changes the
// streams, the consumer and the content bucket; api and worker processes
// only Check what they find.

// ErrNotApplied means a stream, consumer or bucket that quizstream needs
// does not exist: an operator creates them with `quizstream stream apply`.
var ErrNotApplied = errors.New("not created yet: run `quizstream stream apply` with this configuration")

// ErrRefused means Apply would lower what a stream keeps (replicas,
// MaxAge, or MaxBytes or MaxMsgs below what it holds) and was not forced:
// nothing was changed.
var ErrRefused = errors.New("stream apply refused: it would lower what the stream keeps; rerun with --force if that is meant")

// Change is one setting of one object, as it was and as it is (or would be).
type Change struct {
	// Object is "stream ATTEMPTS", "consumer attempt-writer", "stream
	// ATTEMPTS_DLQ" or "bucket quizstream_content".
	Object string
	// Field is the setting's name as operators know it ("replicas", "max_age").
	Field    string
	Was, Now string
	// Reason, for a refused change, says what it would lose.
	Reason string
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	// Created lists the objects that did not exist.
	Created []string
	// Changed lists the settings changed on objects that existed (none when
	// Apply refused).
	Changed []Change
	// Refused lists the changes that lower what a stream keeps; without
	// force, Apply changes nothing when there is one.
	Refused []Change
	// Forced is true when refused changes were applied anyway.
	Forced bool
}

// Apply creates the families' streams and consumers and the content
// bucket as declared, or updates them. Unless force, it refuses
// (ErrRefused, nothing changed) to lower replicas or MaxAge, or MaxBytes
// or MaxMsgs below what a stream holds. It returns what it did, or the
// first error, after which the objects before it may have been changed.
func Apply(ctx context.Context, js jetstream.JetStream, force bool, families ...Family) (ApplyResult, error) {
	var res ApplyResult
	if err := declared(families); err != nil {
		return res, err
	}
	var want []Stream
	var consumers []Consumer
	for _, f := range families {
		want = append(want, f.Streams...)
		consumers = append(consumers, f.Consumers...)
	}
	exists := make([]bool, len(want))
	for i, s := range want {
		info, err := streamInfo(ctx, js, s.Config.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			continue
		case err != nil:
			return res, err
		}
		exists[i] = true
		changes := streamChanges(info.Config, s.Config)
		res.Changed = append(res.Changed, changes...)
		res.Refused = append(res.Refused, refusals(info, changes)...)
	}
	consExists := make([]bool, len(consumers))
	for i, c := range consumers {
		cons, err := js.Consumer(ctx, c.Stream, c.Config.Durable)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		case err != nil:
			return res, fmt.Errorf("consumer %s: %w", c.Config.Durable, err)
		default:
			consExists[i] = true
			res.Changed = append(res.Changed, consumerChanges(cons.CachedInfo().Config, c.Config)...)
		}
	}
	if len(res.Refused) > 0 {
		if !force {
			res.Changed = nil
			return res, ErrRefused
		}
		res.Forced = true
	}

	for i, s := range want {
		if _, err := js.CreateOrUpdateStream(ctx, s.Config); err != nil {
			return res, fmt.Errorf("apply stream %s: %w", s.Config.Name, err)
		}
		if !exists[i] {
			res.Created = append(res.Created, "stream "+s.Config.Name)
		}
	}
	for i, c := range consumers {
		if _, err := js.CreateOrUpdateConsumer(ctx, c.Stream, c.Config); err != nil {
			return res, fmt.Errorf("apply consumer %s: %w", c.Config.Durable, err)
		}
		if !consExists[i] {
			res.Created = append(res.Created, "consumer "+c.Config.Durable)
		}
	}
	created, err := applyContentBucket(ctx, js, max(want[0].Config.Replicas, 1))
	if err != nil {
		return res, err
	}
	if created {
		res.Created = append(res.Created, "bucket "+ContentBucket)
	}
	return res, nil
}

// declared returns the first family's configuration error, or an error
// when there is no family or no stream.
func declared(families []Family) error {
	if len(families) == 0 || len(families[0].Streams) == 0 {
		return errors.New("streams: no family declared")
	}
	for _, f := range families {
		if f.err != nil {
			return f.err
		}
	}
	return nil
}

func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return info, nil
}

// streamChanges lists the settings in which a stream as found (was)
// differs from the one wanted.
func streamChanges(was, want jetstream.StreamConfig) []Change {
	var out []Change
	add := func(field string, w, n any) {
		ws, ns := fmt.Sprint(w), fmt.Sprint(n)
		if ws != ns {
			out = append(out, Change{Object: "stream " + want.Name, Field: field, Was: ws, Now: ns})
		}
	}
	add("replicas", max(was.Replicas, 1), max(want.Replicas, 1))
	add("storage", was.Storage, want.Storage)
	add("retention", was.Retention, want.Retention)
	add("discard", was.Discard, want.Discard)
	add("subjects", strings.Join(was.Subjects, ","), strings.Join(want.Subjects, ","))
	add("max_age", was.MaxAge, want.MaxAge)
	add("max_bytes", limit(was.MaxBytes), limit(want.MaxBytes))
	add("max_msgs", limit(was.MaxMsgs), limit(want.MaxMsgs))
	add("max_msg_size", limit(int64(was.MaxMsgSize)), limit(int64(want.MaxMsgSize)))
	add("duplicates", was.Duplicates, want.Duplicates)
	add("allow_atomic", was.AllowAtomicPublish, want.AllowAtomicPublish)
	add("allow_direct", was.AllowDirect, want.AllowDirect)
	add("allow_msg_schedules", was.AllowMsgSchedules, want.AllowMsgSchedules)
	return out
}

// limit prints a stream limit, where 0 and -1 both mean none.
func limit(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

// refusals are the changes that would lower what a stream keeps.
func refusals(info *jetstream.StreamInfo, changes []Change) []Change {
	was := info.Config
	var out []Change
	for _, c := range changes {
		switch c.Field {
		case "replicas":
			if n, _ := strconv.Atoi(c.Now); n < was.Replicas {
				c.Reason = "fewer replicas: a 202 survives fewer lost servers"
				out = append(out, c)
			}
		case "max_age":
			if d, _ := time.ParseDuration(c.Now); was.MaxAge <= 0 || d < was.MaxAge {
				c.Reason = "a shorter MaxAge deletes the events older than it at once"
				out = append(out, c)
			}
		case "max_bytes":
			if n, _ := strconv.ParseInt(c.Now, 10, 64); c.Now != "unlimited" && uint64(n) < info.State.Bytes {
				c.Reason = fmt.Sprintf("below the %d bytes the stream holds: it would refuse every publish", info.State.Bytes)
				out = append(out, c)
			}
		case "max_msgs":
			if n, _ := strconv.ParseInt(c.Now, 10, 64); c.Now != "unlimited" && uint64(n) < info.State.Msgs {
				c.Reason = fmt.Sprintf("below the %d messages the stream holds: it would refuse every publish", info.State.Msgs)
				out = append(out, c)
			}
		}
	}
	return out
}

func consumerChanges(was, want jetstream.ConsumerConfig) []Change {
	var out []Change
	add := func(field string, w, n any) {
		ws, ns := fmt.Sprint(w), fmt.Sprint(n)
		if ws != ns {
			out = append(out, Change{Object: "consumer " + want.Durable, Field: field, Was: ws, Now: ns})
		}
	}
	add("ack_policy", was.AckPolicy, want.AckPolicy)
	add("filter_subject", was.FilterSubject, want.FilterSubject)
	add("max_deliver", was.MaxDeliver, want.MaxDeliver)
	add("ack_wait", was.AckWait, want.AckWait)
	add("max_ack_pending", was.MaxAckPending, want.MaxAckPending)
	add("replicas", max(was.Replicas, 0), want.Replicas)
	return out
}

// Mismatch is a setting a process found other than it expects.
type Mismatch struct {
	Change
	// Fatal mismatches change what a 202 means or how long it is kept
	// (replicas, storage, retention, discard, subjects, and the consumer's
	// acknowledgement and delivery): a process refuses to start on one.
	// The others are logged as warnings.
	Fatal bool
}

// CheckResult is what Check found.
type CheckResult struct {
	// Mismatches lists the settings that differ from the declarations.
	Mismatches []Mismatch
	// AckWait is each durable consumer's, by name, as found: a worker
	// reports progress on a batch every half of it, whatever its own
	// configuration says.
	AckWait map[string]time.Duration
	// Missing lists the optional objects that do not exist ("stream
	// ATTEMPTS_DLQ"): the workers need them.
	Missing []string
	// ContentBucket says whether the content bucket exists.
	ContentBucket bool
}

// Fatal returns the mismatches a process must not start with.
func (r CheckResult) Fatal() []Mismatch {
	var out []Mismatch
	for _, m := range r.Mismatches {
		if m.Fatal {
			out = append(out, m)
		}
	}
	return out
}

// Require checks one family (Check) for a log that opens it: an error
// wrapping ErrNotApplied, the error of a lookup, or one naming the first
// setting that differs where the family's promises depend on it.
func Require(ctx context.Context, js jetstream.JetStream, f Family) error {
	check, err := Check(ctx, js, f)
	if err != nil {
		return err
	}
	if fatal := check.Fatal(); len(fatal) > 0 {
		return fmt.Errorf("%s streams: %s %s is %s, this process expects %s; apply the configuration",
			f.Name, fatal[0].Object, fatal[0].Field, fatal[0].Was, fatal[0].Now)
	}
	return nil
}

// Check compares every family's streams and consumers with their
// declarations and changes nothing. It returns an error wrapping
// ErrNotApplied naming the first stream or consumer that does not exist
// (an optional stream is listed in Missing instead), or the error of a
// lookup.
func Check(ctx context.Context, js jetstream.JetStream, families ...Family) (CheckResult, error) {
	res := CheckResult{AckWait: map[string]time.Duration{}}
	if err := declared(families); err != nil {
		return res, err
	}
	for _, f := range families {
		subjects := map[string][]string{}
		for _, s := range f.Streams {
			subjects[s.Config.Name] = s.Config.Subjects
			info, err := streamInfo(ctx, js, s.Config.Name)
			switch {
			case errors.Is(err, jetstream.ErrStreamNotFound) && s.Optional:
				res.Missing = append(res.Missing, "stream "+s.Config.Name)
				continue
			case errors.Is(err, jetstream.ErrStreamNotFound):
				return res, fmt.Errorf("%s: stream %s: %w", f.Name, s.Config.Name, ErrNotApplied)
			case err != nil:
				return res, err
			}
			for _, c := range streamChanges(info.Config, s.Config) {
				if len(s.Only) == 0 || slices.Contains(s.Only, c.Field) {
					res.Mismatches = append(res.Mismatches, Mismatch{Change: c, Fatal: slices.Contains(s.Fatal, c.Field)})
				}
			}
		}
		for _, c := range f.Consumers {
			cons, err := js.Consumer(ctx, c.Stream, c.Config.Durable)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return res, fmt.Errorf("%s: consumer %s: %w", f.Name, c.Config.Durable, ErrNotApplied)
			}
			if err != nil {
				return res, fmt.Errorf("consumer %s: %w", c.Config.Durable, err)
			}
			found := cons.CachedInfo().Config
			res.AckWait[c.Config.Durable] = found.AckWait
			for _, ch := range consumerChanges(found, c.Config) {
				fatal := slices.Contains(c.Fatal, ch.Field)
				if ch.Field == "filter_subject" && ch.Now == "" && slices.Equal(subjects[c.Stream], []string{ch.Was}) {
					// A filter on the stream's own subjects (earlier
					// versions): the same messages, found slower over a
					// large backlog; `stream apply` drops it.
					fatal = false
				}
				res.Mismatches = append(res.Mismatches, Mismatch{Change: ch, Fatal: fatal})
			}
		}
	}
	switch _, err := js.ObjectStore(ctx, ContentBucket); {
	case err == nil:
		res.ContentBucket = true
	case !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound):
		return res, fmt.Errorf("bucket %s: %w", ContentBucket, err)
	}
	return res, nil
}

// Capacity is what a stream holds against its limits.
type Capacity struct {
	Messages, Bytes, Subjects uint64
	// MaxMessages and MaxBytes are the stream's limits; 0 or less is none.
	MaxMessages, MaxBytes int64
}

// FullMargin is the room below MaxBytes under which the stream counts as
// full: an attempt of the largest request body the API takes by default.
const FullMargin = 64 << 10

// Fill returns the larger of the stream's byte and message fill, from 0 to
// 1 (0 when it has no limits).
func (c Capacity) Fill() float64 {
	f := 0.0
	if c.MaxBytes > 0 {
		f = float64(c.Bytes) / float64(c.MaxBytes)
	}
	if c.MaxMessages > 0 {
		f = max(f, float64(c.Messages)/float64(c.MaxMessages))
	}
	return min(f, 1)
}

// Full reports whether the stream refuses (or is about to refuse) every
// publish: less than FullMargin below MaxBytes, or MaxMessages held.
func (c Capacity) Full() bool {
	return c.MaxBytes > 0 && c.Bytes+FullMargin > uint64(c.MaxBytes) ||
		c.MaxMessages > 0 && c.Messages >= uint64(c.MaxMessages)
}

// String says how full the stream is, for logs and readiness.
func (c Capacity) String() string {
	return fmt.Sprintf("%d of %s bytes, %d of %s messages (%.1f%% full)",
		c.Bytes, limit(c.MaxBytes), c.Messages, limit(c.MaxMessages), 100*c.Fill())
}

func CapacityOf(info *jetstream.StreamInfo) Capacity {
	return Capacity{
		Messages: info.State.Msgs, Bytes: info.State.Bytes, Subjects: info.State.NumSubjects,
		MaxMessages: info.Config.MaxMsgs, MaxBytes: info.Config.MaxBytes,
	}
}

// StreamStatus is one stream's settings and state.
type StreamStatus struct {
	Name                        string
	Replicas                    int
	Storage, Retention, Discard string
	MaxAge, Duplicates          time.Duration
	AllowAtomicPublish          bool
	Capacity                    Capacity
	FirstSeq, LastSeq           uint64
	FirstTime                   time.Time // of the oldest event held
	Leader                      string    // on a cluster
}

func streamStatus(info *jetstream.StreamInfo) StreamStatus {
	st := StreamStatus{
		Name: info.Config.Name, Replicas: max(info.Config.Replicas, 1),
		Storage: info.Config.Storage.String(), Retention: info.Config.Retention.String(), Discard: info.Config.Discard.String(),
		MaxAge: info.Config.MaxAge, Duplicates: info.Config.Duplicates, AllowAtomicPublish: info.Config.AllowAtomicPublish,
		Capacity: CapacityOf(info), FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, FirstTime: info.State.FirstTime,
	}
	if info.Cluster != nil {
		st.Leader = info.Cluster.Leader
	}
	return st
}

// ConsumerStatus is a durable consumer: its settings and how far behind
// its stream it is.
type ConsumerStatus struct {
	Name, Stream  string
	AckWait       time.Duration
	MaxAckPending int
	MaxDeliver    int
	// AckFloor is the sequence at and below which every event is settled.
	AckFloor uint64
	// Lag counts the events above the ack floor: not settled yet.
	Lag uint64
	// Pending counts events not delivered to any worker yet; AckPending
	// those delivered and not settled; Redelivered those delivered more
	// than once and not settled.
	Pending                 uint64
	AckPending, Redelivered int
	// OldestUnacked is the age of the oldest event not settled (0 when
	// none): past the stream's MaxAge it is deleted unstored.
	OldestUnacked time.Duration
	// MaxAge is the stream's.
	MaxAge time.Duration
}

// FamilyStatus is one family's streams and consumers as found.
type FamilyStatus struct {
	Name      string
	Streams   []StreamStatus
	Consumers []ConsumerStatus
	// Missing lists the family's streams and consumers that do not exist.
	Missing []string
}

// StatusResult is what `quizstream stream status` shows.
type StatusResult struct {
	Families []FamilyStatus
	// Mismatches lists the settings that differ from the declarations.
	Mismatches []Mismatch
}

// Status reads every family's streams and consumers and compares them
// with their declarations, changing nothing. It returns the error of a
// lookup; what does not exist is listed in each family's Missing.
func Status(ctx context.Context, js jetstream.JetStream, families ...Family) (StatusResult, error) {
	var res StatusResult
	if err := declared(families); err != nil {
		return res, err
	}
	complete := true
	for _, f := range families {
		fs := FamilyStatus{Name: f.Name}
		found := map[string]*jetstream.StreamInfo{}
		for _, s := range f.Streams {
			info, err := streamInfo(ctx, js, s.Config.Name)
			switch {
			case errors.Is(err, jetstream.ErrStreamNotFound):
				fs.Missing = append(fs.Missing, "stream "+s.Config.Name)
				complete = complete && s.Optional
				continue
			case err != nil:
				return res, err
			}
			found[s.Config.Name] = info
			fs.Streams = append(fs.Streams, streamStatus(info))
		}
		for _, c := range f.Consumers {
			info := found[c.Stream]
			if info == nil {
				fs.Missing = append(fs.Missing, "consumer "+c.Config.Durable)
				complete = false
				continue
			}
			cons, err := js.Consumer(ctx, c.Stream, c.Config.Durable)
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound):
				fs.Missing = append(fs.Missing, "consumer "+c.Config.Durable)
				complete = false
				continue
			case err != nil:
				return res, fmt.Errorf("consumer %s: %w", c.Config.Durable, err)
			}
			ci := cons.CachedInfo()
			cs := ConsumerStatus{
				Name: ci.Name, Stream: c.Stream, AckWait: ci.Config.AckWait, MaxAckPending: ci.Config.MaxAckPending,
				MaxDeliver: ci.Config.MaxDeliver, AckFloor: ci.AckFloor.Stream, Pending: ci.NumPending,
				AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, MaxAge: info.Config.MaxAge,
			}
			if info.State.LastSeq > ci.AckFloor.Stream {
				cs.Lag = info.State.LastSeq - ci.AckFloor.Stream
			}
			filter := ci.Config.FilterSubject
			if filter == "" && len(info.Config.Subjects) == 1 {
				filter = info.Config.Subjects[0]
			}
			if s, err := js.Stream(ctx, c.Stream); err == nil {
				cs.OldestUnacked = oldestUnacked(ctx, s, filter, ci.AckFloor.Stream, info.State.LastSeq)
			}
			fs.Consumers = append(fs.Consumers, cs)
		}
		res.Families = append(res.Families, fs)
	}
	if complete {
		check, err := Check(ctx, js, families...)
		if err != nil {
			return res, err
		}
		res.Mismatches = check.Mismatches
	} else {
		// Without every object, compare what exists.
		for _, f := range families {
			for _, s := range f.Streams {
				info, err := streamInfo(ctx, js, s.Config.Name)
				if err != nil {
					continue
				}
				for _, c := range streamChanges(info.Config, s.Config) {
					if len(s.Only) == 0 || slices.Contains(s.Only, c.Field) {
						res.Mismatches = append(res.Mismatches, Mismatch{Change: c, Fatal: slices.Contains(s.Fatal, c.Field)})
					}
				}
			}
		}
	}
	slices.SortStableFunc(res.Mismatches, func(a, b Mismatch) int {
		if a.Fatal != b.Fatal && a.Fatal {
			return -1
		} else if a.Fatal != b.Fatal {
			return 1
		}
		return 0
	})
	return res, nil
}

// Family returns the status of the family named name, and whether there is one.
func (r StatusResult) Family(name string) (FamilyStatus, bool) {
	for _, f := range r.Families {
		if f.Name == name {
			return f, true
		}
	}
	return FamilyStatus{}, false
}

// oldestUnacked returns the age of the first event on filter above the
// ack floor, the oldest one not settled, or 0 when there is none (or it
// cannot be read).
func oldestUnacked(ctx context.Context, s jetstream.Stream, filter string, floor, last uint64) time.Duration {
	if floor >= last {
		return 0
	}
	m, err := s.GetMsg(ctx, floor+1, jetstream.WithGetMsgSubject(filter))
	if err != nil {
		return 0
	}
	return time.Since(m.Time)
}
