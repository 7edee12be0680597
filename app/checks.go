package app

import (
	"context"
	"fmt"

	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/health"
	"github.com/quizstream/quizstream/worker"
)

// CheckerConfig is the checker role (docs/checker.md).
type CheckerConfig struct {
	// Run makes this process a checker: it takes check requests from the
	// checkers' consumer and has the code checker run them.
	Run bool
	// Client configures the code checker's client; without a URL requests
	// are kept queued and the role's /readyz says why.
	Client checker.Config
	// Runner sizes the role (worker.CheckerConfig; App fills its Client,
	// AckWait, Logger and Registerer).
	Runner worker.CheckerConfig
}

// openChecks opens the code-checks log (the family's stream is checked
// with every family's in openStream); a worker process runs the check
// writers beside its attempt writers, and a checker process the role.
func (a *App) openChecks(ctx context.Context) error {
	cc := a.cfg.Checks
	if cc.Replicas == 0 {
		cc.Replicas = a.cfg.Stream.Replicas
	}
	var err error
	if a.Checks, err = eventlog.OpenCheckLog(ctx, a.JS, cc); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	a.Registry.MustRegister(a.Checks.Collectors()...)
	if a.cfg.Workers > 0 {
		cons, err := a.Checks.WriterConsumer(ctx)
		if err != nil {
			return err
		}
		wc := a.cfg.WorkerConfig
		wc.AckWait, wc.Logger, wc.Registerer = a.ackWait[a.Checks.Config().Writer], a.log, a.Registry
		cw := worker.NewCheckWriter(a.Store, a.log)
		if a.Model != nil {
			cw.Projector = worker.NewProjector(a.Model, a.Store, a.Log.AckFloor, a.log)
		}
		w, err := worker.NewFamily("checks", cons, cw, wc)
		if err != nil {
			return err
		}
		a.Workers = append(a.Workers, w)
	}
	if !a.cfg.Checker.Run {
		return nil
	}
	rc := a.cfg.Checker.Runner
	rc.AckWait, rc.Logger, rc.Registerer = a.ackWait[a.Checks.Config().Checker], a.log, a.Registry
	if a.cfg.Checker.Client.URL != "" {
		cc := a.cfg.Checker.Client
		cc.Logger, cc.Registerer = a.log, a.Registry
		if a.checkerClient, err = checker.New(cc); err != nil {
			return err
		}
		rc.Client = a.checkerClient
	}
	a.Checker, err = worker.NewChecker(ctx, a.Checks, a.Store, rc)
	return err
}

// checkerReadiness is the checker role's: it needs a code checker
// (CHECKER_URL), NATS and PostgreSQL.
func (a *App) checkerReadiness(r *health.Readiness) *health.Readiness {
	if a.Checker == nil {
		return r
	}
	return r.With(
		health.Check{Name: "checker", Required: true, Probe: a.Checker.Ready},
		health.Check{Name: "postgres_for_checker", Required: true, Probe: a.Store.Ping},
	)
}
