package judge0test

import (
	"strconv"
	"strings"
)

// result is what a run ends with, in the fields Judge0 reports.
type result struct {
	status                                 int
	stdout, stderr, compileOutput, message *string
	timeMS                                 int
}

// run "executes" source on stdin by its directives (see the package doc).
func run(source, stdin string, expected *string) result {
	var (
		table  = map[string]string{}
		echo   bool
		stderr *string
		forced int
		text   string
		timeMS = 1
	)
	for _, line := range strings.Split(source, "\n") {
		_, d, ok := strings.Cut(line, "judge0test:")
		if !ok {
			continue
		}
		d = strings.TrimSpace(d)
		switch {
		case d == "echo":
			echo = true
		case strings.HasPrefix(d, "stderr "):
			if s, err := strconv.Unquote(strings.TrimSpace(d[len("stderr "):])); err == nil {
				stderr = &s
			}
		case strings.HasPrefix(d, "status "):
			num, rest, _ := strings.Cut(strings.TrimSpace(d[len("status "):]), " ")
			if n, err := strconv.Atoi(num); err == nil {
				forced = n
			}
			if s, err := strconv.Unquote(strings.TrimSpace(rest)); err == nil {
				text = s
			}
		case strings.HasPrefix(d, "time "):
			if n, err := strconv.Atoi(strings.TrimSpace(d[len("time "):])); err == nil {
				timeMS = n
			}
		default:
			in, out, ok := strings.Cut(d, "->")
			if !ok {
				continue
			}
			i, err1 := strconv.Unquote(strings.TrimSpace(in))
			o, err2 := strconv.Unquote(strings.TrimSpace(out))
			if err1 == nil && err2 == nil {
				table[i] = o
			}
		}
	}
	res := result{timeMS: timeMS, stderr: stderr}
	if forced != 0 {
		res.status = forced
		var p *string
		if text != "" {
			p = &text
		}
		switch {
		case forced == 6:
			res.compileOutput, res.stderr, res.timeMS = p, nil, 0
		case forced >= 7 && forced <= 12:
			res.stderr = p
		case forced == 13 || forced == 14:
			res.message = p
		default:
			res.stdout = p
		}
		return res
	}
	stdout, ok := table[stdin]
	if !ok && echo {
		stdout, ok = stdin, true
	}
	if ok && stdout != "" {
		res.stdout = &stdout
	}
	// Judge0 compares strip(expected_output) with strip(stdout), and an
	// empty stdout is nil there: an empty expected output never matches.
	res.status = 4
	if expected == nil || (res.stdout != nil && strip(*expected) == strip(stdout)) {
		res.status = 3
	}
	return res
}

// strip is Judge0's comparison: each line's trailing spaces and the
// trailing newlines do not count.
func strip(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r\f\v")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), " \t\r\n\f\v")
}
