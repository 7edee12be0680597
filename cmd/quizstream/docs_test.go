package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// repoRoot is the repository, seen from this package.
const repoRoot = "../.."

// citations are what a markdown document names that the code must have.
type citations struct {
	commands [][]string // each: the words after "quizstream", up to the end of the command
	make     []string   // make targets
	settings []string   // environment variables and other upper-case names
	tests    []string   // TestXxx, FuzzXxx, BenchmarkXxx; a trailing * is a prefix
}

var (
	fence       = regexp.MustCompile("^\\s*```")
	inlineCode  = regexp.MustCompile("`([^`]+)`")
	commandRe   = regexp.MustCompile(`(?:^|[\s/;&|(])quizstream\s+([^|&;#)\n]*)`)
	makeRe      = regexp.MustCompile(`(?:^|[\s;&|(])make\s+([a-z][a-z-]*)`)
	settingRe   = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
	tableNameRe = regexp.MustCompile("(?m)^\\|\\s*`([A-Z][A-Z0-9_]+)`")
	testRe      = regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark)[A-Z0-9_][A-Za-z0-9_]*\*?`)
)

// cite returns what doc names: commands, make targets and settings from
// its code (fenced blocks and inline code), tests from anywhere.
func cite(doc string) citations {
	var code []string
	var prose strings.Builder
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if fence.MatchString(line) {
			in = !in
			continue
		}
		if in {
			// A shell comment is prose: "make the table live" is no target.
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i]
			}
			code = append(code, line)
		} else {
			prose.WriteString(line)
			prose.WriteString(" ")
		}
	}
	for _, m := range inlineCode.FindAllStringSubmatch(prose.String(), -1) {
		code = append(code, m[1])
	}
	var c citations
	for _, text := range code {
		for _, m := range commandRe.FindAllStringSubmatch(text, -1) {
			var words []string
			for _, w := range strings.Fields(m[1]) {
				w = strings.Trim(w, "[]`,")
				if w != "" {
					words = append(words, w)
				}
			}
			if len(words) > 0 && regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(words[0]) {
				c.commands = append(c.commands, words)
			}
		}
		for _, m := range makeRe.FindAllStringSubmatch(text, -1) {
			c.make = append(c.make, m[1])
		}
		c.settings = append(c.settings, settingRe.FindAllString(text, -1)...)
	}
	for _, m := range tableNameRe.FindAllStringSubmatch(doc, -1) {
		c.settings = append(c.settings, m[1])
	}
	c.tests = testRe.FindAllString(doc, -1)
	return c
}

// The extraction finds what a document cites, and only that: a check
// built on it can fail.
func TestCite(t *testing.T) {
	doc := "Run `quizstream replay --exams --from-seq 3` or `quizstream stream apply [--force] | status`;\n" +
		"quizstream takes the insert off the path, from `github.com/quizstream/quizstream/client`.\n" +
		"```\nbin/quizstream migrate && METRICS_ADDR=:9091 bin/quizstream worker &   # make the NATS_URL one\n" +
		"quizstream <command> -h\nquizstream ──▶ api\nmake test-faults\n```\n" +
		"| `PPROF` | `false` | profiles; see `STREAM_MAX_AGE` and TestReplayRestore, `TestFault*` |\n"
	got := cite(doc)
	wantCommands := [][]string{{"migrate"}, {"worker"}, {"replay", "--exams", "--from-seq", "3"}, {"stream", "apply", "--force"}}
	if len(got.commands) != len(wantCommands) {
		t.Fatalf("commands: %q, want %q", got.commands, wantCommands)
	}
	for i := range wantCommands {
		if !slices.Equal(got.commands[i], wantCommands[i]) {
			t.Errorf("command %d: %q, want %q", i, got.commands[i], wantCommands[i])
		}
	}
	if !slices.Equal(got.make, []string{"test-faults"}) {
		t.Errorf("make targets: %q", got.make)
	}
	sort.Strings(got.settings)
	if want := []string{"METRICS_ADDR", "PPROF", "STREAM_MAX_AGE"}; !slices.Equal(got.settings, want) {
		t.Errorf("settings: %q, want %q", got.settings, want)
	}
	if want := []string{"TestReplayRestore", "TestFault*"}; !slices.Equal(got.tests, want) {
		t.Errorf("tests: %q, want %q", got.tests, want)
	}
}

// goFiles returns the contents of the .go files under dir (recursively
// when deep), tests or not as tests says.
func goFiles(t *testing.T, dir string, deep, tests bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (!deep || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") != tests {
			return nil
		}
		b, err := os.ReadFile(path)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// literals returns the Go string literals in srcs that match pattern.
func literals(srcs []string, pattern string) map[string]bool {
	re := regexp.MustCompile(`"(` + pattern + `)"`)
	m := map[string]bool{}
	for _, src := range srcs {
		for _, x := range re.FindAllStringSubmatch(src, -1) {
			m[x[1]] = true
		}
	}
	return m
}

// The docs say what the code does: every command, subcommand and flag of
// quizstream that README.md, bench/README.md and docs/*.md cite exists (the commands as
// `quizstream help` lists them, subcommands and flags as the command's
// source names them), every make target is in the Makefile, every
// setting is one quizstream reads (or a stream the streams package names,
// an environment variable a test reads, a make variable), and every test
// name is a function in a _test.go file.
func TestDocsCiteWhatExists(t *testing.T) {
	docs := []string{filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "bench", "README.md")}
	more, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(more) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	docs = append(docs, more...)

	var help bytes.Buffer
	if err := run(t.Context(), []string{"help"}, &help, &help); err != nil && !errors.Is(err, errHelp) {
		t.Fatalf("quizstream help: %v", err)
	}
	commands := map[string]bool{}
	inList := false
	for _, line := range strings.Split(help.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "commands:"):
			inList = true
		case inList && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   "):
			commands[strings.Fields(line)[0]] = true
		case inList && strings.TrimSpace(line) == "":
			inList = len(commands) == 0
		}
	}
	if len(commands) < 5 {
		t.Fatalf("quizstream help lists %d commands:\n%s", len(commands), help.String())
	}
	cmdSrc := goFiles(t, ".", false, false)
	names := literals(cmdSrc, `[a-z][a-z-]*`)
	settings := literals(cmdSrc, `[A-Z][A-Z0-9_]*`)
	for name := range settingNames() {
		settings[name] = true
	}
	// Stream names: EXAM_TIMERS, and ATTEMPTS_DLQ (ATTEMPTS and "_DLQ").
	eventsSrc := goFiles(t, filepath.Join(repoRoot, "streams"), false, false)
	suffixes := literals(eventsSrc, `_[A-Z][A-Z0-9_]*`)
	for name := range literals(eventsSrc, `[A-Z][A-Z0-9_]*`) {
		settings[name] = true
		for suffix := range suffixes {
			settings[name+suffix] = true
		}
	}
	getenv := regexp.MustCompile(`Getenv\("([A-Z][A-Z0-9_]*)"\)`)
	testSrc := goFiles(t, repoRoot, true, true)
	for _, src := range append(goFiles(t, repoRoot, true, false), testSrc...) {
		for _, m := range getenv.FindAllStringSubmatch(src, -1) {
			settings[m[1]] = true // QUIZSTREAM_TEST_DATABASE_URL and the like
		}
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*)\s*\?=`).FindAllStringSubmatch(string(makefile), -1) {
		settings[m[1]] = true // FUZZTIME
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	tests := map[string]bool{}
	for _, src := range testSrc {
		for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)\w*)\(`).FindAllStringSubmatch(src, -1) {
			tests[m[1]] = true
		}
	}

	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name, c := filepath.Base(path), cite(string(b))
		for _, words := range c.commands {
			cmd := strings.Join(words, " ")
			if words[0] == "help" { // quizstream help [command]
				continue
			}
			if !commands[words[0]] {
				t.Errorf("%s cites `quizstream %s`: %q is not a command of quizstream help", name, cmd, words[0])
				continue
			}
			for i, w := range words[1:] {
				switch {
				case strings.HasPrefix(w, "-"):
					flag, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
					if flag != "h" && flag != "help" && !names[flag] {
						t.Errorf("%s cites `quizstream %s`: no flag %q in cmd/quizstream", name, cmd, flag)
					}
				case i == 0 && regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(w):
					if !names[w] {
						t.Errorf("%s cites `quizstream %s`: no subcommand %q in cmd/quizstream", name, cmd, w)
					}
				}
			}
		}
		for _, target := range c.make {
			if !targets[target] {
				t.Errorf("%s cites `make %s`: no such target in the Makefile", name, target)
			}
		}
		for _, s := range c.settings {
			if !settings[s] {
				t.Errorf("%s cites %s: quizstream reads no such setting (nor is it a stream, a test's variable or a make variable)", name, s)
			}
		}
		for _, tn := range c.tests {
			found := tests[tn]
			if prefix, ok := strings.CutSuffix(tn, "*"); ok {
				for have := range tests {
					found = found || strings.HasPrefix(have, prefix)
				}
			}
			if !found {
				t.Errorf("%s cites %s: no such test function in the repository", name, tn)
			}
		}
	}
}

// settingNames returns the environment variable of every command's
// settings, as the binary reads them.
func settingNames() map[string]bool {
	out := map[string]bool{}
	for name, cmd := range commands {
		f := newFlags(name, "", &config{}, io.Discard, io.Discard, cmd.groups...)
		for fl := range f.env {
			out[envName(fl)] = true
		}
	}
	return out
}

// mdLink is a Markdown link's target.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link of README.md, bench/README.md and docs/*.md names a
// file or folder of the repository: the README once pointed to an API.md
// the repository does not hold.
func TestDocLinksExist(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	docs = append(docs, filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "bench", "README.md"))
	n := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			//nolint:gosec // G703: the test checks the repository's own docs' links, relative to each doc
			if _, err := os.Stat(filepath.Join(filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, m[1])
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d relative links found", n)
	}
}
