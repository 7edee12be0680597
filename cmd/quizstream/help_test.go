package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

// -h, --help and `help <command>` print the command's help to stdout and
// exit 0, before anything connects: the NATS URL given points nowhere.
func TestHelp(t *testing.T) {
	t.Parallel()
	for name, cmd := range commands {
		if helpText(name) == "" {
			t.Errorf("%s: no help/%s.txt", name, name)
		}
		var want string
		for _, args := range [][]string{{"help", name}, {name, "-h"}, {name, "--help"}, {name, "-help"}} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), args, &stdout, &stderr)
			if exitCode(err) != exitOK || stdout.Len() == 0 || stderr.Len() != 0 {
				t.Errorf("%q: exit %d (%v), %d bytes on stdout, %d on stderr", args, exitCode(err), err, stdout.Len(), stderr.Len())
			}
			if want == "" {
				want = stdout.String()
			} else if stdout.String() != want {
				t.Errorf("%q printed another help than %q", args, []string{"help", name})
			}
		}
		// After a verb and other flags: the URL given points nowhere.
		args := append([]string{name}, cmd.verbs[:min(1, len(cmd.verbs))]...)
		if cmd.nats {
			args = append(args, "--nats-url", "nats://127.0.0.1:1")
		}
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), append(args, "-h"), &stdout, &stderr); exitCode(err) != exitOK || stdout.Len() == 0 || stderr.Len() != 0 {
			t.Errorf("%q -h: exit %d (%v), %d bytes on stdout, %d on stderr", args, exitCode(err), err, stdout.Len(), stderr.Len())
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"help"}, &stdout, &stderr); exitCode(err) != exitOK || stdout.Len() == 0 {
		t.Errorf("help: exit %d (%v)", exitCode(err), err)
	}
}

// Exit codes: 0 done or help, 2 a bad command line or setting, 3 drift,
// 4 a database not migrated, 1 any other failure.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"migrate", "--no-such-flag"}, exitUsage},
		{[]string{"migrate", "now"}, exitUsage},
		{[]string{"migrate", "--log-level", "loud"}, exitUsage},
		{[]string{"dlq"}, exitUsage},
		{[]string{"dlq", "list", "--nats-url="}, exitUsage},
		{[]string{"stream", "purge"}, exitUsage},
		{[]string{"stream", "status", "--force", "--nats-url", "nats://127.0.0.1:1"}, exitUsage},
		{[]string{"dlq", "show", "x", "--nats-url", "nats://127.0.0.1:1"}, exitUsage},
		{[]string{"dlq", "list", "--nats-url", "nats://127.0.0.1:1"}, exitError}, // no server there
		{[]string{"version"}, exitOK},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), tc.args, &stdout, &stderr); exitCode(err) != tc.want {
			t.Errorf("%q: exit %d (%v), want %d", tc.args, exitCode(err), err, tc.want)
		}
	}
	for err, want := range map[error]int{
		nil: exitOK, errHelp: exitOK, errUsage: exitUsage, usageErr("x"): exitUsage,
		fmt.Errorf("replay: %w", errDrift): exitDrift, fmt.Errorf("api: %w", errNotMigrated): exitNotMigrated, errors.New("boom"): exitError,
	} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}

// version prints the build's version, commit and Go version.
func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"version", "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var got app.BuildInfo
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || got != app.ReadBuildInfo() || got.Go == "" {
		t.Fatalf("version --json: %+v, %v; want %+v", got, err, app.ReadBuildInfo())
	}
}

// api and worker refuse at once a database whose schema is behind the
// binary's (exit 4), and go on past the check on a migrated one.
func TestNotMigrated(t *testing.T) {
	t.Parallel()
	ns := eventstest.NewServer(t)
	empty, migrated := storetest.EmptyDatabase(t), storetest.NewDatabase(t)
	for _, name := range []string{"api", "worker"} {
		for db, want := range map[string]int{empty: exitNotMigrated, migrated: exitError} {
			args := []string{name, "--database-url", db, "--nats-url", ns.ClientURL(), "--metrics-addr", "off", "--listen-addr", "127.0.0.1:0", "--log-level", "error"}
			if name == "worker" {
				args = slices.Delete(args, len(args)-4, len(args)-2) // no -listen-addr
			}
			var stdout, stderr bytes.Buffer
			// Past the check, the stream is missing: the process refuses to start.
			if err := run(t.Context(), args, &stdout, &stderr); exitCode(err) != want ||
				(want == exitError && !errors.Is(err, streams.ErrNotApplied)) {
				t.Errorf("%s on the %s database: exit %d (%v), want %d", name, map[bool]string{true: "empty", false: "migrated"}[db == empty], exitCode(err), err, want)
			}
		}
	}
}
