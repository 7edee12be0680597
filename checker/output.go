package checker

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// truncatedMark ends an Output cut to Config.MaxOutputBytes.
const truncatedMark = "\n[output truncated]\n"

// testName is what the student sees a test called: a hidden test's name
// is its position only.
func testName(i int, t TestCase) string {
	if t.Hidden || t.Name == "" {
		return fmt.Sprintf("test %d", i+1)
	}
	return t.Name
}

// result builds the Result of a run whose tests are all final.
func (r *run) result() Result {
	res := Result{Verdict: VerdictPassed, Tests: make([]TestResult, len(r.tests))}
	limit := r.c.cfg.MaxOutputBytes
	var b strings.Builder
	lastCompile := ""
	for i, st := range r.tests {
		o, tc := st.final, r.req.Tests[i]
		name := testName(i, tc)
		id := o.statusID()
		if id == StatusAccepted && tc.Expected == "" && strings.TrimSpace(deref(o.Stdout)) != "" {
			id = StatusWrongAnswer // sent without expected_output: see run.submit
		}
		passed := id == StatusAccepted
		res.Tests[i] = TestResult{Name: name, Passed: passed, TimeMS: int64(math.Round(float64(o.Time) * 1000))}
		if passed {
			continue
		}
		res.Verdict = VerdictFailed
		if b.Len() > limit {
			continue // the rest would be cut anyway
		}
		fmt.Fprintf(&b, "%s: %s\n", name, StatusDescription(id))
		// A compiler error is the same for every test: say it once. It
		// does not depend on the test's input, so hidden tests show it.
		if co := deref(o.CompileOutput); co != "" && co != lastCompile {
			block(&b, "compile output", co, limit)
			lastCompile = co
		}
		// A hidden test's stdout and stderr could echo its input.
		if !tc.Hidden {
			block(&b, "stderr", deref(o.Stderr), limit)
			block(&b, "stdout", deref(o.Stdout), limit)
		}
		if id != StatusCompilationError {
			block(&b, "message", deref(o.Message), limit)
		}
	}
	res.Output = limitOutput(b.String(), limit)
	return res
}

func block(b *strings.Builder, label, text string, limit int) {
	if text == "" {
		return
	}
	text = truncate(strings.ToValidUTF8(text, "\uFFFD"), limit)
	fmt.Fprintf(b, "--- %s\n%s", label, text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
}

// limitOutput cuts s to at most limit bytes of valid UTF-8, ending with a
// mark when it cut.
func limitOutput(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= limit {
		return s
	}
	return truncate(s, limit-len(truncatedMark)) + truncatedMark
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
