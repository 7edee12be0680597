package replay

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Projection is a projection a replay can rebuild: what operators call
// it, the stream it folds, and how it is rebuilt beside the live one,
// compared with it and, with Config.Swap, put in its place. Its SQL is
// the workers' own (package store), so a rebuild folds as they do.
type Projection struct {
	// Name is what `quizstream replay --rebuild` takes.
	Name string
	// Mode is the Mode of Run that rebuilds it into shadow tables; empty
	// for one rebuilt otherwise.
	Mode Mode
	// Stream names the stream it folds (its default name).
	Stream string
	// Ranged reports whether a rebuild reads Config's range (FromSeq,
	// Since, Until); one that does not reads its whole stream.
	Ranged bool
	// About says in a line what a rebuild does.
	About string

	// rebuild rebuilds one without a Mode.
	rebuild func(ctx context.Context, cfg Config) (Rebuilt, error)
}

// Rebuilt is what a rebuild found and did: Result, or ReadModelResult.
type Rebuilt interface {
	// WriteText prints it as `quizstream replay` shows it; err is the
	// rebuild's.
	WriteText(w io.Writer, cfg Config, err error)
	// Drift describes the differences found and left in the live
	// projection; "" when there are none.
	Drift() string
}

// projections is the registry, by name.
var projections = []Projection{
	{Name: "checks", Mode: RebuildChecks, Stream: "CHECKS",
		About: "the checks and exercise_passes tables, from the whole checks stream, into checks_rebuild and exercise_passes_rebuild"},
	{Name: "progress", Mode: RebuildProgress, Stream: "ATTEMPTS", Ranged: true,
		About: "the progress table, from the attempts stream and the recorded attempts, into progress_rebuild"},
	{Name: "readmodel", Stream: "ATTEMPTS", rebuild: readModel,
		About: "the student read model's values, from the whole attempts stream and PostgreSQL, in memory"},
}

// Projections returns the registered projections, by name.
func Projections() []Projection { return slices.Clone(projections) }

// Lookup returns the registered projection called name, or an error that
// lists the registered names.
func Lookup(name string) (Projection, error) {
	for _, p := range projections {
		if p.Name == name {
			return p, nil
		}
	}
	names := make([]string, len(projections))
	for i, p := range projections {
		names[i] = p.Name
	}
	return Projection{}, fmt.Errorf("replay: no projection %q: the registered projections are %s", name, strings.Join(names, ", "))
}

// Rebuild rebuilds p with cfg (its Mode is p's) and returns what it found
// and did, or nil when it failed before it began (a bad Config, no
// stream, another rebuild running), with that error. The error is the
// first that stopped it; transient database failures are retried until
// ctx ends.
func (p Projection) Rebuild(ctx context.Context, cfg Config) (Rebuilt, error) {
	if p.rebuild != nil {
		return p.rebuild(ctx, cfg)
	}
	cfg.Mode = p.Mode
	res, err := Run(ctx, cfg)
	if res.Mode == "" {
		return nil, err
	}
	return res, err
}

// Tables reports whether p is rebuilt into shadow tables, which
// Config.KeepShadow keeps and Config.LockTimeout bounds the swap of.
func (p Projection) Tables() bool { return p.Mode != "" }

// readModel rebuilds the read model with RebuildReadModel.
func readModel(ctx context.Context, cfg Config) (Rebuilt, error) {
	return RebuildReadModel(ctx, ReadModelConfig{Store: cfg.Store, JetStream: cfg.JetStream, Stream: cfg.Stream,
		Swap: cfg.Swap, Logger: cfg.Logger})
}
