package replay

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/retry"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

// PartsResult is what a rebuild of the read model did with the students'
// exam sessions and newest checks: values of their own
// (readmodel.Sessions, readmodel.Checks), each built from PostgreSQL, the
// system of record, and compared with the live one. Their folds are
// joins, so no stream shadow is needed to trust PostgreSQL's.
type PartsResult struct {
	// Students counts the students PostgreSQL holds sessions or checks of.
	Students int64
	// Differed counts the values (a student's sessions, a student's
	// checks) that differed from the rebuilt one, or were missing,
	// compared before any swap; Swapped those written by Swap.
	Differed, Swapped int64
}

// rebuildParts rebuilds every student's sessions and checks values.
func rebuildParts(ctx context.Context, cfg ReadModelConfig, model *readmodel.Model) (PartsResult, error) {
	var res PartsResult
	err := cfg.Store.StudentsWithSessionsOrChecks(ctx, func(id uuid.UUID) error {
		res.Students++
		retryable := func(err error) bool { return store.IsTransient(err) || errors.Is(err, readmodel.ErrConflict) }
		for _, part := range []func() (differed, swapped bool, err error){
			func() (bool, bool, error) {
				return rebuildPart(ctx, cfg.Swap, id, model.GetSessions, model.PutSessions,
					func() (readmodel.Sessions, error) { return worker.SessionsFromPostgres(ctx, cfg.Store, id) },
					(*readmodel.Sessions).Equal, func(v *readmodel.Sessions) bool { return len(v.List) == 0 && !v.Over })
			},
			func() (bool, bool, error) {
				return rebuildPart(ctx, cfg.Swap, id, model.GetChecks, model.PutChecks,
					func() (readmodel.Checks, error) { return worker.ChecksFromPostgres(ctx, cfg.Store, id) },
					(*readmodel.Checks).Equal, func(v *readmodel.Checks) bool { return v.Total == 0 })
			},
		} {
			var differed, swapped bool
			err := retry.Do(ctx, retryPolicy, retryable, nil, func() (err error) {
				differed, swapped, err = part()
				return err
			})
			if err != nil {
				return err
			}
			res.Differed += boolInt(differed)
			res.Swapped += boolInt(swapped)
		}
		return nil
	})
	cfg.Logger.Info("replay: read model sessions and checks rebuilt", "students", res.Students, "differed", res.Differed,
		"swapped", res.Swapped, "err", err)
	return res, err
}

// rebuildPart compares one value of a student with the one PostgreSQL
// gives, and with swap puts that one in place of the live value it read
// (a compare-and-set: a fold meanwhile makes it try again). The live
// value is read first: PostgreSQL holds every fold it shows (the writers
// fold after their commit). A missing value PostgreSQL has nothing for
// (empty) does not differ.
func rebuildPart[T any](ctx context.Context, swap bool, id uuid.UUID,
	get func(context.Context, uuid.UUID) (T, uint64, error), put func(context.Context, uuid.UUID, *T, uint64) (uint64, error),
	build func() (T, error), equal func(*T, *T) bool, empty func(*T) bool) (differed, swapped bool, err error) {
	live, rev, err := get(ctx, id)
	missing := errors.Is(err, readmodel.ErrMissing)
	if err != nil && !missing {
		return false, false, err
	}
	want, err := build()
	if err != nil {
		return false, false, err
	}
	if (missing && empty(&want)) || (!missing && equal(&live, &want)) {
		return false, false, nil
	}
	if !swap {
		return true, false, nil
	}
	if _, err := put(ctx, id, &want, rev); err != nil {
		return true, false, err
	}
	return true, true, nil
}
