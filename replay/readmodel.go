package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// ReadModelConfig says how to rebuild the student read model.
type ReadModelConfig struct {
	// Store, JetStream and Stream as in Config. Required (Stream's zero
	// fields take the defaults).
	Store     *store.Store
	JetStream jetstream.JetStream
	Stream    streams.StreamConfig
	// Swap writes the rebuilt value of every student whose value in the
	// model differs (or is missing), each with a compare-and-set on the
	// value it replaces, while workers keep folding. Defaults to only
	// comparing.
	Swap bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// ReadModelResult is what a rebuild of the read model did.
type ReadModelResult struct {
	// Read counts the events of the attempts stream folded into the
	// shadow (an in-memory value per student); Poison those that do not
	// decode.
	Read, Poison int64
	// Students counts the students PostgreSQL holds attempts of.
	Students int64
	// Matched counts the students whose shadow, folded from the stream,
	// equals their value built from PostgreSQL; FromPostgres those whose
	// history the stream does not hold whole (attempts older than its
	// retention, tombstones): their value comes from PostgreSQL, the
	// system of record, as every rebuilt value does.
	Matched, FromPostgres int64
	// NotInPostgres counts the students the stream has events of and
	// PostgreSQL no attempt: the workers are behind, or the database
	// needs a restore (quizstream replay) first.
	NotInPostgres int64
	// Differed counts the students whose value in the live model differed
	// from the rebuilt one (or was missing), compared before any swap.
	Differed int64
	// Swapped counts the values written by Swap.
	Swapped int64
	// Parts is what the rebuild did with the students' exam sessions and
	// checks (readmodel_parts.go).
	Parts PartsResult
	// Duration is how long the rebuild took.
	Duration time.Duration
}

// RebuildReadModel rebuilds the read model: it folds the attempts stream
// into a shadow, builds every student's value from PostgreSQL, compares
// the two and the live model (the diff), and with Swap writes the rebuilt
// values in place. It returns what it did and the first error; transient
// database failures are retried until ctx ends.
func RebuildReadModel(ctx context.Context, cfg ReadModelConfig) (res ReadModelResult, err error) {
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	if cfg.Store == nil || cfg.JetStream == nil {
		return res, errors.New("replay: ReadModelConfig.Store and JetStream are required")
	}
	if err := cfg.Stream.Validate(); err != nil {
		return res, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	model, err := readmodel.OpenWriter(ctx, cfg.JetStream, eventlog.BatchConfig{Logger: cfg.Logger})
	if err != nil {
		return res, err
	}
	defer model.Close()

	// The shadow: the stream folded as a worker folds it.
	shadow := map[uuid.UUID]*readmodel.Student{}
	rd, err := eventlog.OpenReader(ctx, cfg.JetStream, cfg.Stream, eventlog.Range{FromSeq: 1})
	if err != nil {
		return res, err
	}
	for {
		msgs, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rd.Close(context.WithoutCancel(ctx))
			return res, err
		}
		for _, m := range msgs {
			e, err := events.DecodeAt(m.Subject, m.Data)
			if err != nil {
				res.Poison++
				continue
			}
			res.Read++
			s := shadow[e.StudentID]
			if s == nil {
				s = &readmodel.Student{}
				shadow[e.StudentID] = s
			}
			s.Apply(readmodel.Fold{Seq: m.Seq, Event: e})
		}
	}
	rd.Close(context.WithoutCancel(ctx))

	cons, err := cfg.JetStream.Consumer(ctx, cfg.Stream.Name, cfg.Stream.Consumer)
	if err != nil {
		return res, fmt.Errorf("consumer %s: %w", cfg.Stream.Consumer, err)
	}
	err = cfg.Store.StudentsWithAttempts(ctx, func(id uuid.UUID) error {
		res.Students++
		var o studentOutcome
		err := retry.Do(ctx, retryPolicy, func(err error) bool { return store.IsTransient(err) || errors.Is(err, readmodel.ErrConflict) }, nil,
			func() (err error) {
				o, err = rebuildStudent(ctx, cfg, model, cons, id, shadow[id])
				return err
			})
		if err != nil {
			return err
		}
		delete(shadow, id)
		res.Matched += boolInt(o.matched)
		res.FromPostgres += boolInt(!o.matched)
		res.Differed += boolInt(o.differed)
		res.Swapped += boolInt(o.swapped)
		return nil
	})
	if err == nil {
		res.Parts, err = rebuildParts(ctx, cfg, model)
	}
	// What is left of the shadow are students PostgreSQL has no attempt of.
	res.NotInPostgres = int64(len(shadow))
	cfg.Logger.Info("replay: read model rebuilt", "read", res.Read, "students", res.Students, "matched", res.Matched,
		"from_postgres", res.FromPostgres, "not_in_postgres", res.NotInPostgres, "differed", res.Differed, "swapped", res.Swapped, "err", err)
	return res, err
}

// studentOutcome is what rebuildStudent found and did.
type studentOutcome struct{ matched, differed, swapped bool }

// rebuildStudent compares one student's shadow, value in PostgreSQL and
// live value, and with Swap puts the rebuilt value in place of the live
// one it read (a compare-and-set: a fold meanwhile makes it try again).
// The live value is read before the ack floor and the snapshot, as a
// worker's reseed does, so the value put holds every fold it replaces.
func rebuildStudent(ctx context.Context, cfg ReadModelConfig, model *readmodel.Model, cons jetstream.Consumer,
	id uuid.UUID, shadow *readmodel.Student) (studentOutcome, error) {
	var o studentOutcome
	live, rev, err := model.Get(ctx, id)
	missing := errors.Is(err, readmodel.ErrMissing)
	if err != nil && !missing {
		return o, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return o, err
	}
	floor := info.AckFloor.Stream
	snap, err := cfg.Store.GetStudentSnapshot(ctx, id, floor, readmodel.PageSize)
	if err != nil {
		return o, err
	}
	want := worker.FromSnapshot(snap, floor, live.Seq)
	if shadow != nil {
		// Passes come from the checks stream, not this one: PostgreSQL's.
		shadow.Passed = want.Passed
	}
	o.matched = shadow != nil && shadow.Equal(&want)
	if !missing && live.Equal(&want) {
		return o, nil
	}
	o.differed = true
	if !cfg.Swap {
		return o, nil
	}
	if _, err := model.Put(ctx, id, &want, rev); err != nil {
		return o, err
	}
	o.swapped = true
	return o, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// WriteText prints what the rebuild did, as `quizstream replay --rebuild
// readmodel` shows it. A failed write goes unreported, as in
// Result.WriteText.
func (res ReadModelResult) WriteText(w io.Writer, _ Config, _ error) {
	fmt.Fprintf(w, "replay rebuild readmodel: %d events folded into the shadow (%d undecodable), %d students in PostgreSQL\n",
		res.Read, res.Poison, res.Students)
	fmt.Fprintf(w, "  shadow equal to PostgreSQL: %d; from PostgreSQL (history beyond the stream): %d; in the stream only: %d\n",
		res.Matched, res.FromPostgres, res.NotInPostgres)
	fmt.Fprintf(w, "  sessions and checks of %d students: values differing: %d; swapped: %d\n",
		res.Parts.Students, res.Parts.Differed, res.Parts.Swapped)
	fmt.Fprintf(w, "  live values differing: %d; swapped: %d; took %s\n", res.Differed, res.Swapped, res.Duration.Round(time.Millisecond))
}

// Drift describes the values of the live model that differ from the
// rebuilt ones and were left so; "" when none.
func (res ReadModelResult) Drift() string {
	if n := res.Differed - res.Swapped + res.Parts.Differed - res.Parts.Swapped; n > 0 {
		return fmt.Sprintf("%d values of the read model differ from PostgreSQL (--swap replaces them)", n)
	}
	return ""
}
