package worker

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/readmodel"
	"github.com/quizstream/quizstream/store"
)

// projectConcurrency bounds the students of one batch folded at once;
// their compare-and-set puts share the model's atomic batches. A fold is
// round trips (a get, a put that waits for its batch's sync), not CPU:
// at 64 a batch of 4,000 events for 500 students took 1.1 s, at 512 0.6 s
// (POST-only load, 500 students, one dev process, same machine).
const projectConcurrency = 512

// floorMaxAge is how old a reading of the ack floor a fold may use: any
// reading is safe (the floor only rises), a fresher one keeps values'
// lists of folded sequences shorter.
const floorMaxAge = time.Second

// Projector folds what a Writer stored into the read model, after the
// transaction committed and before the worker acknowledges: so every
// event at or below the ack floor is in the model, which is what lets
// the API read the model, then the tail above the floor, and miss
// nothing. Each student's value is read, folded and put back with a
// compare-and-set on its revision, so concurrent workers never lose a
// fold and a value never goes backwards; an event is folded at most once
// (readmodel.Student.Apply skips sequences it holds). A value the model
// cannot fold exactly (a student it does not hold, an attempt older than
// its page) is built again from PostgreSQL.
type Projector struct {
	model   *readmodel.Model
	store   *store.Store
	floor   func(context.Context) (uint64, error)
	log     *slog.Logger
	metrics *metrics
	backoff time.Duration

	mu      sync.Mutex
	reading uint64
	readAt  time.Time
}

// NewProjector returns a Projector into model, building values from st,
// with floor reading the attempts consumer's ack floor.
func NewProjector(model *readmodel.Model, st *store.Store, floor func(context.Context) (uint64, error), log *slog.Logger) *Projector {
	if log == nil {
		log = slog.Default()
	}
	m, _ := newMetrics(nil)
	return &Projector{model: model, store: st, floor: floor, log: log, metrics: m, backoff: DefaultMaxBackoff}
}

// ackFloor returns a reading of the ack floor at most floorMaxAge old, or
// 0 (always safe: nothing is pruned) when it cannot be read.
func (p *Projector) ackFloor(ctx context.Context) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.readAt) < floorMaxAge {
		return p.reading
	}
	at := time.Now()
	seq, err := p.floor(ctx)
	if err != nil {
		p.log.Debug("worker: reading the ack floor for the read model failed", "err", err)
		return p.reading
	}
	p.reading, p.readAt = seq, at
	return seq
}

// Project folds folds into the model, retrying each student's until it
// is put or ctx ends; it returns ctx's error then, after which the
// records must not be acknowledged.
func (p *Projector) Project(ctx context.Context, folds []readmodel.Fold) error {
	if len(folds) == 0 {
		return nil
	}
	by := map[uuid.UUID][]readmodel.Fold{}
	for _, f := range folds {
		by[f.Event.StudentID] = append(by[f.Event.StudentID], f)
	}
	floor := p.ackFloor(ctx)
	return eachStudent(ctx, p, by, func(ctx context.Context, student uuid.UUID, fs []readmodel.Fold) error {
		slices.SortFunc(fs, func(a, b readmodel.Fold) int { return cmp.Compare(a.Seq, b.Seq) })
		return p.student(ctx, student, fs, floor)
	})
}

// student folds one student's events: read, fold, put if changed.
func (p *Projector) student(ctx context.Context, id uuid.UUID, folds []readmodel.Fold, floor uint64) error {
	s, rev, err := p.model.Get(ctx, id)
	changed := false
	switch {
	case errors.Is(err, readmodel.ErrMissing):
		if s, err = p.seed(ctx, id, floor, readmodel.Student{}); err != nil {
			return err
		}
		changed = true
	case err != nil:
		return err
	}
	for _, f := range folds {
		switch s.Apply(f) {
		case readmodel.Folded:
			changed = true
			p.metrics.folds.WithLabelValues("folded").Inc()
		case readmodel.Skipped:
			p.metrics.folds.WithLabelValues("skipped").Inc()
		case readmodel.Reseed:
			if s, err = p.seed(ctx, id, floor, s); err != nil {
				return err
			}
			changed = true
		}
	}
	if !changed {
		return nil
	}
	s.Prune(floor)
	_, err = p.model.Put(ctx, id, &s, rev)
	return err
}

// seed builds a student's value from PostgreSQL: everything committed is
// in the snapshot, and so is every event at or below floor (acknowledged
// only after its commit); the sequences above floor it holds are marked
// folded, so their own folds skip them. Seq never falls below was's.
func (p *Projector) seed(ctx context.Context, id uuid.UUID, floor uint64, was readmodel.Student) (readmodel.Student, error) {
	p.metrics.folds.WithLabelValues("reseeded").Inc()
	snap, err := p.store.GetStudentSnapshot(ctx, id, floor, readmodel.PageSize)
	if err != nil {
		return readmodel.Student{}, err
	}
	return FromSnapshot(snap, floor, was.Seq), nil
}

// SeedModel builds a student's value from PostgreSQL (read after the ack
// floor floor) and stores it unless the model holds one already, and
// returns the value the model holds then: the API's read of a student
// the model lacks, so that what it answers is never more than the model
// answers afterwards. A value of another version is answered, not stored.
func SeedModel(ctx context.Context, model *readmodel.Model, st *store.Store, id uuid.UUID, floor uint64) (readmodel.Student, error) {
	snap, err := st.GetStudentSnapshot(ctx, id, floor, readmodel.PageSize)
	if err != nil {
		return readmodel.Student{}, err
	}
	v := FromSnapshot(snap, floor, 0)
	_, err = model.Put(ctx, id, &v, 0)
	if !errors.Is(err, readmodel.ErrConflict) {
		return v, err
	}
	held, _, err := model.Get(ctx, id)
	if errors.Is(err, readmodel.ErrMissing) {
		return v, nil
	}
	return held, err
}

// FromSnapshot is the value a PostgreSQL snapshot of a student (taken
// after reading the ack floor floor) gives, its Seq at least seq: the one
// mapping from rows to a value, which workers and the rebuild share.
func FromSnapshot(snap store.StudentSnapshot, floor, seq uint64) readmodel.Student {
	s := readmodel.Student{Floor: floor, Above: snap.Above, Total: snap.Total, Seq: max(seq, floor)}
	for _, q := range snap.Progress {
		s.Progress = append(s.Progress, readmodel.Quiz{QuizID: q.QuizID, CourseID: q.CourseID, Attempts: q.Attempts, Best: q.BestScore})
	}
	slices.SortFunc(s.Progress, func(a, b readmodel.Quiz) int { return slices.Compare(a.QuizID[:], b.QuizID[:]) })
	for _, a := range snap.Page {
		s.Page = append(s.Page, readmodel.Attempt{ID: a.ID, QuizID: a.QuizID, Score: a.Score, MaxScore: a.MaxScore,
			Failed: a.Status == store.StatusFailed, SubmittedAt: a.SubmittedAt.UTC()})
	}
	for _, seq := range snap.Above {
		s.Seq = max(s.Seq, seq)
	}
	for _, p := range snap.Passes {
		s.Passed = append(s.Passed, readmodel.Pass{CourseID: p.CourseID, ExerciseID: p.ExerciseID})
	}
	return s
}

// StudentPass is an exercise one student passed, as the check writers
// commit it.
type StudentPass struct {
	Student uuid.UUID
	Pass    readmodel.Pass
}

// ProjectPasses adds committed exercise passes to the model, retrying
// each student's until it is put or ctx ends; it returns ctx's error then,
// after which the records must not be acknowledged. A student the model
// lacks is built from PostgreSQL, where the passes are committed already.
func (p *Projector) ProjectPasses(ctx context.Context, passes []StudentPass) error {
	by := map[uuid.UUID][]readmodel.Pass{}
	for _, sp := range passes {
		by[sp.Student] = append(by[sp.Student], sp.Pass)
	}
	return eachStudent(ctx, p, by, func(ctx context.Context, student uuid.UUID, ps []readmodel.Pass) error {
		s, rev, err := p.model.Get(ctx, student)
		switch {
		case errors.Is(err, readmodel.ErrMissing):
			s, err = p.seed(ctx, student, p.ackFloor(ctx), readmodel.Student{})
		case err == nil:
			changed := false
			for _, pass := range ps {
				changed = s.AddPass(pass) || changed
			}
			if !changed {
				return nil
			}
		}
		if err != nil {
			return err
		}
		_, err = p.model.Put(ctx, student, &s, rev)
		return err
	})
}
