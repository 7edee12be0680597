// Command quizstream runs the quizstream services and operator tools:
//
//	quizstream api      the HTTP API (needs NATS_URL)
//	quizstream worker   the JetStream-to-PostgreSQL writer (needs NATS_URL)
//	quizstream migrate  applies the database migrations
//	quizstream seed     loads the demo content (idempotent)
//	quizstream dev      all of the above in one process, with an embedded NATS server
//	quizstream dlq      lists, shows and redrives dead letters
//	quizstream replay   re-reads the stream to restore the database or rebuild progress
//	quizstream stream   applies the stream settings (the one owner of them), or shows them
//	quizstream content  imports or exports a content file
//
// Configuration comes from environment variables, overridden by flags;
// `quizstream <command> -h` lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "quizstream:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: quizstream <command> [flags]

commands:
  api       serve the HTTP API (needs NATS_URL)
  worker    write attempts from the stream to PostgreSQL (needs NATS_URL)
  migrate   apply the database migrations
  seed      load the demo content (20 courses x 10 quizzes x 10 questions); idempotent
  dev       everything in one process with an embedded NATS server
  dlq       list, show and redrive dead letters (needs NATS_URL)
  replay    re-read the stream: restore attempts, --dry-run, or --rebuild progress (needs NATS_URL)
  stream    apply [--force] the stream settings, or show their status, fill and lag (needs NATS_URL)
  content   import FILE or export a content file (courses, quizzes, answer keys; docs/content.md)

Run 'quizstream <command> -h' for its flags and environment variables.
`

// run is the whole program, with its inputs passed in so that tests can
// call it: it returns when the command is done or ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "api":
		return runAPI(ctx, args, getenv, stdout, stderr)
	case "worker":
		return runWorker(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout, stderr)
	case "seed":
		return runSeed(ctx, args, getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, args, getenv, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, args, getenv, stdout, stderr)
	case "replay":
		return runReplay(ctx, args, getenv, stdout, stderr)
	case "stream":
		return runStream(ctx, args, getenv, stdout, stderr)
	case "content":
		return runContent(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "quizstream: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}
