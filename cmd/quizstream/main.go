// Command quizstream runs the quizstream services and operator tools:
//
//	quizstream api      the HTTP API (needs NATS_URL)
//	quizstream worker   the JetStream-to-PostgreSQL writer (needs NATS_URL)
//	quizstream checker  runs code checks against a Judge0-compatible checker (needs NATS_URL)
//	quizstream migrate  applies the database migrations
//	quizstream seed     loads the demo content (idempotent)
//	quizstream dev      all of the above in one process, with an embedded NATS server
//	quizstream dlq      lists, shows and redrives dead letters
//	quizstream replay   re-reads the streams to restore the database or rebuild a projection
//	quizstream stream   applies the stream settings (the one owner of them), or shows them
//	quizstream version  prints the build's version, commit and Go version
//
// Configuration comes from environment variables, overridden by flags;
// `quizstream <command> -h` lists them. Exit codes: 0 done, 1 failed,
// 2 bad usage (flags, arguments, settings), 3 a replay rebuild found the
// live projection differing from the stream (drift), 4 api or worker found
// the database not migrated.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/quizstream/quizstream/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && err != errUsage && !errors.Is(err, errHelp) { //nolint:errorlint // the bare errUsage follows its help
		fmt.Fprintln(os.Stderr, "quizstream:", err)
	}
	os.Exit(exitCode(err))
}

// Exit codes, documented in README.md.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitDrift       = 3
	exitNotMigrated = 4
)

var (
	// errUsage is a command line or setting that makes no sense: exit 2.
	errUsage = errors.New("usage")
	// errHelp is help asked for and printed: exit 0.
	errHelp = errors.New("help")
	// errDrift is a projection found differing from the stream: exit 3.
	errDrift = errors.New("drift")
	// errNotMigrated is a database whose schema is behind the binary's: exit 4.
	errNotMigrated = errors.New("database not migrated")
)

func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errDrift):
		return exitDrift
	case errors.Is(err, errNotMigrated):
		return exitNotMigrated
	}
	return exitError
}

// usageError is a usage error (exit 2) that says what is wrong.
type usageError string

func (e usageError) Error() string        { return string(e) }
func (e usageError) Is(target error) bool { return target == errUsage } //nolint:errorlint // a sentinel

func usageErr(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

// command is one subcommand: its settings and flags, and what it does
// once they are parsed; its help is help/<name>.txt.
type command struct {
	groups []group // its settings
	own    func(fs *flag.FlagSet, c *config)
	verbs  []string // when set, the first argument is one of them
	args   bool     // takes positional arguments
	nats   bool     // needs NATS_URL
	run    func(ctx context.Context, c *config, in invocation) error
}

// invocation is what a command runs with besides its configuration.
type invocation struct {
	verb           string
	args           []string
	log            *slog.Logger
	stdout, stderr io.Writer
}

var commands = map[string]*command{
	"api": {nats: true, run: runAPI,
		groups: []group{common, database, natsRequired, metrics("127.0.0.1:9090"), stream, apiSettings, shutdown}},
	"worker": {nats: true, run: runWorker,
		groups: []group{common, database, natsRequired, metrics("127.0.0.1:9091"), stream, workerSettings, shutdown}},
	"checker": {nats: true, run: runChecker,
		groups: []group{common, database, natsRequired, metrics("127.0.0.1:9092"), stream, checkerSettings, shutdown}},
	"migrate": {run: runMigrate,
		groups: []group{common, database}},
	"seed": {run: runSeed,
		groups: []group{common, database, natsSettings("NATS server URL(s); when set, running API instances are told to reload content")}},
	"dev": {run: runDev, groups: []group{common, database, natsSettings("NATS server URL(s), comma-separated; empty starts an embedded server"),
		metrics("127.0.0.1:9090"), stream, apiSettings, workerSettings, checkerSettings, shutdown, devSettings}},
	"dlq": {verbs: []string{"list", "show", "redrive"}, args: true, nats: true, run: runDLQ,
		groups: []group{common, natsRequired}, own: dlqFlags},
	"replay": {nats: true, run: runReplay,
		groups: []group{common, database, natsRequired, replaySettings}, own: replayFlags},
	"stream": {verbs: []string{"apply", "status"}, nats: true, run: runStream,
		groups: []group{common, natsRequired, stream}, own: streamFlags},
	"content": {verbs: []string{"import", "export"}, args: true, run: runContent,
		groups: []group{common, database, natsSettings("NATS server URL(s); when set, an import saves the content copy and tells running API instances to reload")},
		own:    contentFlags},
	"version": {run: runVersion,
		own: func(fs *flag.FlagSet, c *config) { fs.BoolVar(&c.JSON, "json", false, "print it as JSON") }},
}

// run is the whole program, with its inputs passed in so that tests can
// call it: it returns when the command is done or ctx is cancelled.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, helpText("quizstream"))
		return errUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "--help":
		if len(args) == 0 {
			fmt.Fprint(stdout, helpText("quizstream"))
			return errHelp
		}
		return run(ctx, []string{args[0], "-h"}, stdout, stderr)
	}
	cmd := commands[name]
	if cmd == nil {
		fmt.Fprintf(stderr, "quizstream: unknown command %q\n\n%s", name, helpText("quizstream"))
		return errUsage
	}
	var c config
	f, args, err := cmd.flags(name, &c, args, stdout, stderr)
	if err != nil {
		return err
	}
	in := invocation{verb: f.verb, stdout: stdout, stderr: stderr}
	// Positional arguments come before or after the flags.
	for len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		in.args, args = append(in.args, args[0]), args[1:]
	}
	if err := f.parse(args); err != nil {
		return err
	}
	// And between and after the flags.
	for rest := f.fs.Args(); len(rest) > 0; rest = f.fs.Args() {
		in.args = append(in.args, rest[0])
		if err := f.fs.Parse(rest[1:]); err != nil {
			return usageErr("%s: %v", f.fs.Name(), err)
		}
	}
	switch {
	case len(in.args) > 0 && !cmd.args:
		return usageErr("unexpected arguments: %q", in.args)
	case cmd.nats && c.NATSURL == "":
		return usageErr("NATS_URL is required")
	}
	if in.log, err = newLogger(&c, stderr); err != nil {
		return err
	}
	f.logConfig(in.log, strings.TrimPrefix(f.fs.Name(), "quizstream "))
	return cmd.run(ctx, &c, in)
}

// flags builds the command's flag set into c, after taking its verb off
// args; a missing or unknown verb prints its help (to stdout for -h).
func (cmd *command) flags(name string, c *config, args []string, stdout, stderr io.Writer) (*flags, []string, error) {
	f := newFlags(name, helpText(name), c, stdout, stderr, cmd.groups...)
	if cmd.own != nil {
		cmd.own(f.fs, c)
	}
	if len(cmd.verbs) == 0 {
		return f, args, nil
	}
	if len(args) == 0 || !slices.Contains(cmd.verbs, args[0]) {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			f.help(stdout)
			return f, nil, errHelp
		}
		f.help(stderr)
		return f, nil, errUsage
	}
	f.fs.Init(f.fs.Name()+" "+args[0], flag.ContinueOnError)
	f.verb = args[0]
	return f, args[1:], nil
}

//go:embed help/*.txt
var helpFiles embed.FS

// helpText is the help of a command, or of quizstream itself.
func helpText(name string) string {
	b, _ := helpFiles.ReadFile("help/" + name + ".txt") // each command has one: TestHelp
	return string(b)
}

// runVersion prints what app.ReadBuildInfo says of this build.
func runVersion(_ context.Context, c *config, in invocation) error {
	b := app.ReadBuildInfo()
	if c.JSON {
		return printJSON(in.stdout, b)
	}
	_, err := fmt.Fprintf(in.stdout, "quizstream %s\ncommit %s\ngo %s\n", b.Version, b.Commit, b.Go)
	return err
}

// printJSON prints v as indented JSON: the --json output of a command is
// the value its tests check.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
