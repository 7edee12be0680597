package replay

import (
	"context"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/worker"
)

// shadow is a projection being rebuilt into tables beside the live ones:
// the events read are folded into it, then it is compared with the live
// tables and, with Config.Swap, put in their place. Each step records
// what it did in the run's Result.
type shadow interface {
	// fold folds one batch of events, each mapped to its row as a worker
	// maps it, retrying while the database is unreachable.
	fold(ctx context.Context, msgs []eventlog.StreamMsg) error
	// diff compares the shadow with the live tables (Result.Diff or
	// Result.Checks); the runner retries it.
	diff(ctx context.Context) error
	// swap puts the shadow in place of the live tables; the runner
	// retries it.
	swap(ctx context.Context) error
	// close drops what is left of the shadow unless keep is set.
	close(ctx context.Context, keep bool) error
}

// startShadow creates the shadow tables of the run's Mode.
func (r *runner) startShadow(ctx context.Context) (shadow, error) {
	if r.cfg.Mode == RebuildChecks {
		rb, err := r.cfg.Store.StartCheckRebuild(ctx)
		if err != nil {
			return nil, err
		}
		return &checksShadow{r: r, rb: rb}, nil
	}
	rb, err := r.cfg.Store.StartProgressRebuild(ctx)
	if err != nil {
		return nil, err
	}
	return &progressShadow{r: r, rb: rb}, nil
}

// progressShadow rebuilds the progress table (store.ProgressRebuild).
type progressShadow struct {
	r  *runner
	rb *store.ProgressRebuild
}

// fold counts the events of attempts stored as recorded into the shadow.
func (s *progressShadow) fold(ctx context.Context, msgs []eventlog.StreamMsg) error {
	r := s.r
	evs := make([]store.ProgressEvent, 0, len(msgs))
	for _, m := range msgs {
		e, err := events.DecodeAt(m.Subject, m.Data)
		if err != nil {
			r.skip(m, err)
			continue
		}
		evs = append(evs, worker.Row(m.Seq, e).ProgressEvent())
	}
	var n int64
	err := r.retry(ctx, "fold", func() (err error) {
		n, err = s.rb.Fold(ctx, evs)
		return err
	})
	if err != nil {
		return err
	}
	r.res.Counted += n
	r.res.NotCounted += int64(len(evs)) - n
	return nil
}

// diff counts into the shadow the recorded attempts no event read
// accounted for, and compares it with the live table.
func (s *progressShadow) diff(ctx context.Context) error {
	d, err := s.rb.Diff(ctx, s.r.cfg.DiffRows)
	if err != nil {
		return err
	}
	s.r.res.Diff = &d
	s.r.res.FromTable += d.FoldedFromTable
	return nil
}

func (s *progressShadow) swap(ctx context.Context) error {
	n, err := s.rb.Swap(ctx, s.r.cfg.LockTimeout)
	s.r.res.CountedUnderLock = n
	return err
}

func (s *progressShadow) close(ctx context.Context, keep bool) error { return s.rb.Close(ctx, keep) }

// checksShadow rebuilds the checks projection (store.CheckRebuild) from
// the whole checks stream.
type checksShadow struct {
	r  *runner
	rb *store.CheckRebuild
}

// fold folds the check events into the shadow with the check writers'
// statement.
func (s *checksShadow) fold(ctx context.Context, msgs []eventlog.StreamMsg) error {
	r := s.r
	rows := make([]store.Check, 0, len(msgs))
	for _, m := range msgs {
		e, err := events.DecodeCheckAt(m.Subject, m.Data)
		if err != nil {
			r.skip(m, err)
			continue
		}
		rows = append(rows, worker.CheckRow(m.Seq, e))
	}
	var n int64
	err := r.retry(ctx, "fold", func() (err error) {
		n, err = s.rb.Fold(ctx, rows)
		return err
	})
	if err != nil {
		return err
	}
	r.res.Counted += n
	r.res.NotCounted += int64(len(rows)) - n
	return nil
}

// diff folds into the shadow the live rows whose events were not read
// (gone from the stream, or stored after the range ended), and compares
// it with the live tables.
func (s *checksShadow) diff(ctx context.Context) error {
	res := &s.r.res
	first := res.FirstSeq
	if first == 0 { // nothing read: every row's events are gone
		first = res.EndSeq + 1
	}
	d, err := s.rb.Diff(ctx, first, res.EndSeq, s.r.cfg.DiffRows)
	if err != nil {
		return err
	}
	res.Checks = &d
	res.FromTable += d.FromLive
	return nil
}

func (s *checksShadow) swap(ctx context.Context) error {
	n, err := s.rb.Swap(ctx, s.r.res.EndSeq, s.r.cfg.LockTimeout)
	s.r.res.CountedUnderLock = n
	return err
}

func (s *checksShadow) close(ctx context.Context, keep bool) error { return s.rb.Close(ctx, keep) }

// skip counts an undecodable event as poison, skipped by a rebuild.
func (r *runner) skip(m eventlog.StreamMsg, err error) {
	r.res.Poison++
	r.log.Warn("replay: undecodable event skipped", "stream_seq", m.Seq, "subject", m.Subject, "err", err)
}
