package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/checker"
	"github.com/quizstream/quizstream/worker"
)

// checkerSettings binds the checker role (docs/checker.md).
func checkerSettings(fs *flag.FlagSet, c *config) {
	k := &c.Checker
	fs.StringVar(&k.Client.URL, "checker-url", "", "base URL of a Judge0-compatible code checker; empty keeps check requests queued")
	fs.StringVar(&k.Client.Token, "checker-token", "", "X-Auth-Token sent to the code checker; empty sends none")
	fs.StringVar(&c.CheckerLanguages, "checker-languages", "", "language names to Judge0 language ids, name=id comma-separated; empty takes the defaults (docs/checker.md)")
	fs.IntVar(&k.Client.MaxConcurrent, "checker-max-concurrent", 8, "checks at the code checker at once")
	fs.Float64Var(&k.Client.RatePerSecond, "checker-rate", 20, "HTTP requests to the code checker per second")
	fs.DurationVar(&k.Client.Timeout, "checker-timeout", 0, "longest one HTTP request to the code checker may take; 0 takes 10s")
	fs.DurationVar(&k.Client.CheckTimeout, "checker-check-timeout", 0, "longest one check at the code checker may take; 0 takes 2m")
	fs.DurationVar(&k.Runner.Deadline, "check-deadline", worker.DefaultCheckDeadline, "a check unfinished this long after its request ends as error (the student may submit again)")
	fs.IntVar(&k.Runner.Concurrency, "checker-concurrency", worker.DefaultCheckConcurrency, "check requests this process holds at once")
}

// checkerConfig is the checker role as the settings say.
func (c *config) checkerConfig(log *slog.Logger, withAPI, dev bool, workers int) (app.Config, error) {
	cfg := c.app(log, withAPI, dev, workers)
	langs, err := checker.ParseLanguages(c.CheckerLanguages)
	if err != nil {
		return cfg, usageErr("CHECKER_LANGUAGES: %v", err)
	}
	cfg.Checker.Client.Languages = langs
	return cfg, nil
}

func runChecker(ctx context.Context, c *config, in invocation) error {
	if err := checkMigrated(ctx, c.DatabaseURL, in.log); err != nil {
		return err
	}
	cfg, err := c.checkerConfig(in.log, false, false, 0)
	if err != nil {
		return err
	}
	cfg.Checker.Run = true
	return serve(ctx, cfg, in.stdout)
}
