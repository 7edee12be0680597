package main

import (
	"context"
	"flag"
	"log/slog"
	"strconv"
	"strings"

	"github.com/quizstream/quizstream/app"
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

// parseLanguages reads CHECKER_LANGUAGES: name=id pairs, comma-separated;
// empty is nil (the checker's defaults).
func parseLanguages(v string) (map[string]int, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	m := map[string]int{}
	for _, p := range strings.Split(v, ",") {
		name, id, ok := strings.Cut(strings.TrimSpace(p), "=")
		n, err := strconv.Atoi(id)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, usageErr("CHECKER_LANGUAGES: %q is not name=id (python=71)", p)
		}
		m[name] = n
	}
	return m, nil
}

// checkerConfig is the checker role as the settings say.
func (c *config) checkerConfig(log *slog.Logger, withAPI, dev bool, workers int) (app.Config, error) {
	cfg := c.app(log, withAPI, dev, workers)
	langs, err := parseLanguages(c.CheckerLanguages)
	cfg.Checker.Client.Languages = langs
	return cfg, err
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
