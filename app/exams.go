package app

import (
	"context"
	"fmt"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/worker"
)

// openExams opens the exams log (the exams family's streams, checked with
// every family's in openStream) and, in a process that runs workers,
// builds its exam loops (worker.ExamWorker): every worker process projects
// sessions and finalizes them at their deadline, sharing the two durable
// consumers.
func (a *App) openExams(ctx context.Context) error {
	xc := a.cfg.Exams
	if xc.Replicas == 0 {
		xc.Replicas = a.cfg.Stream.Replicas
	}
	var err error
	if a.Exams, err = eventlog.OpenExamLog(ctx, a.JS, xc); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	a.Registry.MustRegister(a.Exams.Collectors()...)
	if a.cfg.Workers <= 0 {
		return nil
	}
	wc := a.cfg.ExamWorker
	wc.AckWait, wc.Logger, wc.Registerer = a.ackWait[a.Exams.Config().Writer], a.log, a.Registry
	if a.Model != nil {
		wc.Projector = worker.NewProjector(a.Model, a.Store, a.Log.AckFloor, a.log)
	}
	a.ExamWorker, err = worker.NewExamWorker(ctx, a.Exams, a.Store, a.Log, wc)
	return err
}
