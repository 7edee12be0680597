package readme_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// Every goroutine the test starts (the in-process instance) must be gone
// when it ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// block returns the body of the fenced block of the given language that
// follows the first line starting with marker in doc, or fails t.
func block(t testing.TB, doc, marker, lang string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+marker)
	if i < 0 {
		t.Fatalf("README.md has no %q marker", marker)
	}
	rest := doc[i+1:]
	open := "\n```" + lang + "\n"
	j := strings.Index(rest, open)
	if j < 0 || strings.Contains(rest[:j], "```") {
		t.Fatalf("README.md: no ```%s block right after %q", lang, marker)
	}
	body := rest[j+len(open):]
	k := strings.Index(body, "\n```")
	if k < 0 {
		t.Fatalf("README.md: the ```%s block after %q does not end", lang, marker)
	}
	return body[:k+1]
}

// The README's "Try it" block, run by bash as pasted, against an API and a
// worker started through the binary's wiring on a fresh database seeded
// with the demo, prints exactly the output the README shows: accounts,
// content read with jq-picked ids, an attempt accepted then recorded,
// progress, and a timed exam started, autosaved and submitted.
func TestTryIt(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install -y jq curl)", tool)
		}
	}
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	script := block(t, doc, "<!-- try-it:", "sh")
	want := block(t, doc, "<!-- try-it-output -->", "text")
	if m := regexp.MustCompile(`<[a-z_]+>`).FindString(script); m != "" {
		t.Fatalf("the Try it block holds a placeholder, %s: a reader cannot paste it", m)
	}
	if !strings.Contains(script, "QS=${QS:-") {
		t.Fatal("the Try it block does not take the API's address from $QS")
	}

	s := apptest.New(t, streams.StreamConfig{})
	cfg := s.Config(t)
	cfg.API, cfg.Workers = true, 1
	in := s.Start(t, cfg)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "QS="+in.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the Try it block failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if got := stdout.String(); got != want {
		t.Fatalf("the Try it block printed\n%s\nthe README says\n%s\nstderr:\n%s", got, want, stderr.String())
	}
}
