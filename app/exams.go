package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// openExams opens the exams streams (streams.ExamStreamConfig: EXAMS and
// EXAM_TIMERS), applying their settings when the process owns them
// (ApplyStream) and refusing them when their durability differs, and, in
// a process that runs workers, builds its exam loops (worker.ExamWorker):
// every worker process projects sessions and finalizes them at their
// deadline, sharing the two durable consumers.
func (a *App) openExams(ctx context.Context) error {
	xc := a.cfg.Exams
	if xc.Replicas == 0 {
		xc.Replicas = a.cfg.Stream.Replicas
	}
	if a.cfg.ApplyStream {
		if err := streams.ApplyExams(ctx, a.JS, xc); err != nil {
			return err
		}
	}
	var err error
	a.Exams, err = eventlog.OpenExamLog(ctx, a.JS, xc)
	if errors.Is(err, streams.ErrNotApplied) {
		// Until `quizstream stream apply` creates them, the first process
		// to start does; it never changes them once they exist.
		a.log.Warn("events: the exams streams did not exist; created with this process's settings", "err", err)
		if err = streams.ApplyExams(ctx, a.JS, xc); err == nil {
			a.Exams, err = eventlog.OpenExamLog(ctx, a.JS, xc)
		}
	}
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	a.Registry.MustRegister(a.Exams.Collectors()...)
	xc = a.Exams.Config()
	a.log.Info("events: exams streams ready", "stream", xc.Name, "timers", xc.TimerName, "replicas", xc.Replicas,
		"max_age", xc.MaxAge, "max_bytes", xc.MaxBytes, "timer_max_bytes", xc.TimerMaxBytes)
	if a.cfg.Workers <= 0 {
		return nil
	}
	wc := a.cfg.ExamWorker
	wc.AckWait, wc.Logger, wc.Registerer = xc.AckWait, a.log, a.Registry
	a.ExamWorker, err = worker.NewExamWorker(ctx, a.Exams, a.Store, a.Log, wc)
	return err
}
