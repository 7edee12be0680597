package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

// The replay itself is tested in package replay; these tests cover what
// the command adds: its flags, their way into replay.Config, and the
// printing of the Result.

// Bad flags are refused as usage errors (exit 2), with a message naming
// the problem, before any connection is made.
func TestReplayFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from-seq", "0"}, "--from-seq must be at least 1"},
		{[]string{"--since", "yesterday"}, "not an RFC 3339 time"},
		{[]string{"--until", "2025-13-01T00:00:00Z"}, "not an RFC 3339 time"},
		{[]string{"--from-seq", "5", "--since", "2025-01-01T00:00:00Z"}, "exclusive"},
		{[]string{"--since", "2025-01-02T00:00:00Z", "--until", "2025-01-01T00:00:00Z"}, "is before --since"},
		{[]string{"--batch-size", "0"}, "--batch-size must be between"},
		{[]string{"--rebuild", "attempts"}, `no projection "attempts": the registered projections are checks, progress, readmodel`},
		{[]string{"--swap"}, "--swap needs --rebuild"},
		{[]string{"--keep-shadow"}, "--keep-shadow needs --rebuild checks or progress"},
		{[]string{"--rebuild", "readmodel", "--keep-shadow"}, "--keep-shadow needs --rebuild checks or progress"},
		{[]string{"--rebuild", "checks", "--from-seq", "5"}, "--rebuild checks reads its whole stream"},
		{[]string{"--rebuild", "readmodel", "--since", "2025-01-01T00:00:00Z"}, "--rebuild readmodel reads its whole stream"},
		{[]string{"--rebuild", "progress", "--swap", "--keep-shadow"}, "exclusive"},
		{[]string{"--rebuild", "progress", "--dry-run"}, "exclusive"},
		{[]string{"--lock-timeout", "0s", "--rebuild", "progress", "--swap"}, "--lock-timeout must be positive"},
		{[]string{"now"}, "unexpected arguments"},
		{[]string{"--nats-url="}, "NATS_URL is required"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"replay", "--nats-url", "nats://127.0.0.1:1"}, tc.args...)
		if err := run(t.Context(), args, &stdout, &stderr); !errors.Is(err, errUsage) || exitCode(err) != exitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"replay", "--no-such-flag"}, &stdout, &stderr); !errors.Is(err, errUsage) ||
		!strings.Contains(stderr.String(), "flag provided but not defined") || !strings.Contains(stderr.String(), "--rebuild progress") {
		t.Errorf("an unknown flag: %v\n%s", err, stderr.String())
	}
}

// The command replays what its flags say, against the database and the
// NATS server of its environment: the rows it leaves show that each flag
// reached the replay.
func TestReplayCommand(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	db := s.DB
	quiz := s.Quizzes[0]
	for i := range 6 {
		answers := eventAnswers(apptest.AnswersFor(quiz, i))
		e := events.AttemptSubmitted{
			AttemptID: uuid.New(), StudentID: uuid.New(), QuizID: quiz.ID, CourseID: quiz.CourseID,
			Answers: answers, AnswersHash: events.HashAnswers(quiz.ID, answers),
			Score: i, MaxScore: len(quiz.Questions), SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
		}
		if _, err := s.Log.PublishAttempt(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.JS.Publish(t.Context(), events.AttemptSubject(uuid.New(), uuid.New()), []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	count := func(sql string) int { return storetest.Int(t, db, sql) }

	// --from-seq and --batch-size: seq 3 to 7, the last one poison.
	out := runCommand(t, s, "replay", "--from-seq", "3", "--batch-size", "2")
	if n, from3 := count(`SELECT count(*) FROM attempts`), count(`SELECT count(*) FROM attempts WHERE stream_seq >= 3`); n != 4 || from3 != 4 {
		t.Fatalf("replay --from-seq 3 stored %d attempts (%d from seq 3), want those of seq 3 to 6", n, from3)
	}
	if strings.Contains(out, "\r") {
		t.Errorf("a progress bar on stdout, which is not a terminal:\n%s", out)
	}
	// --dry-run writes nothing.
	runCommand(t, s, "replay", "--dry-run")
	if n := count(`SELECT count(*) FROM attempts`); n != 4 {
		t.Fatalf("replay --dry-run changed the attempts stored from 4 to %d", n)
	}
	// --rebuild progress --keep-shadow keeps the rebuilt table, and --swap
	// replaces a corrupted live one.
	runCommand(t, s, "replay", "--rebuild", "progress", "--keep-shadow")
	if n := count(`SELECT count(*) FROM pg_class WHERE relname = 'progress_rebuild'`); n != 1 {
		t.Fatal("replay --rebuild progress --keep-shadow did not keep progress_rebuild")
	}
	if _, err := db.Exec(t.Context(), `UPDATE progress SET attempts = attempts + 1`); err != nil {
		t.Fatal(err)
	}
	// A rebuild that finds drift and leaves it is exit code 3; --json
	// prints the Result.
	stdout, stderr, err := runOn(t, s, "replay", "--rebuild", "progress", "--json")
	var res replay.Result
	if jerr := json.Unmarshal([]byte(stdout), &res); !errors.Is(err, errDrift) || exitCode(err) != exitDrift || jerr != nil ||
		res.Mode != replay.RebuildProgress || res.Read != 7 || res.Poison != 1 || res.Diff == nil || res.Diff.Changed == 0 || res.Swapped {
		t.Fatalf("replay --rebuild progress --json on a drifted table: %v, %v, %+v\n%s", err, jerr, res, stderr)
	}
	runJSON(t, s, &res, "replay", "--rebuild", "progress", "--swap", "--diff-rows", "1")
	if !res.Swapped || res.Diff == nil || res.Diff.Changed == 0 {
		t.Fatalf("replay --rebuild progress --swap: %+v", res)
	}
	if n := count(storetest.ProgressDriftSQL("progress")); n != 0 {
		t.Fatalf("after replay --rebuild progress --swap, progress differs from the attempts in %d rows", n)
	}

	// --rebuild checks: a check in the stream that no writer stored is
	// drift (exit 3), which --swap repairs.
	checks, err := eventlog.OpenCheckLog(t.Context(), s.JS, streams.CheckStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer checks.Close()
	ref := events.CheckRef{CheckID: uuid.New(), StudentID: uuid.New(), ExerciseID: uuid.New(), CourseID: uuid.New(),
		Language: "python", SourceHash: events.HashSource(uuid.Nil, "python", "print(1)"), SubmittedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if _, err := checks.Request(t.Context(), events.CodeCheckRequested{CheckRef: ref, Source: "print(1)"}); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err = runOn(t, s, "replay", "--rebuild", "checks", "--json")
	res = replay.Result{}
	if jerr := json.Unmarshal([]byte(stdout), &res); exitCode(err) != exitDrift || jerr != nil || res.Mode != replay.RebuildChecks ||
		res.Checks == nil || res.Checks.Missing != 1 || res.Swapped {
		t.Fatalf("replay --rebuild checks --json with a check not stored: %v, %v, %+v\n%s", err, jerr, res, stderr)
	}
	runCommand(t, s, "replay", "--rebuild", "checks", "--swap")
	if n := count(`SELECT count(*) FROM checks WHERE status = 'queued'`); n != 1 {
		t.Fatalf("after replay --rebuild checks --swap, %d queued checks, want the one requested", n)
	}
	runCommand(t, s, "replay", "--rebuild", "checks") // no drift left: exit 0
}

// The summary shows each figure of the Result under its own label, the
// differences of a rebuild row by row, and what became of the tables; an
// interrupted replay's error says which flag goes on.
func TestReplayPrint(t *testing.T) {
	t.Parallel()
	one, two, nine := 1, 2, 9
	course, other := uuid.MustParse("00000000-0000-0000-0000-00000000000c"), uuid.MustParse("00000000-0000-0000-0000-00000000000d")
	student, quiz := uuid.MustParse("00000000-0000-0000-0000-000000000005"), uuid.MustParse("00000000-0000-0000-0000-00000000000a")
	errorStatus, passedStatus := store.CheckError, store.CheckPassed
	for _, tc := range []struct {
		name string
		cfg  replay.Config
		res  replay.Result
		err  error
		want string
	}{{
		name: "restore",
		res: replay.Result{Mode: replay.Restore, Read: 40, FirstSeq: 3, LastSeq: 42, Stored: 30, AlreadyPresent: 8, Poison: 2,
			Duration: 2 * time.Second},
		want: `replay restore: stream seq 3 to 42
  read             40  events
  stored           30  new rows
  already present  8   attempts stored before
  poison           2   events set aside (their failed tombstones restored where they decode)
  duration         2s  
  rate             20  events/s
`,
	}, {
		name: "dry run, nothing in the range",
		res:  replay.Result{Mode: replay.DryRun},
		want: `replay dry run (nothing written): no events in the range
  read             0   events
  stored           0   new rows a restore would store
  already present  0   attempts stored before
  poison           0   events a restore would set aside
  duration         0s  
  rate             0   events/s
`,
	}, {
		name: "rebuild, stopped",
		cfg:  replay.Config{Mode: replay.RebuildProgress, Swap: true},
		res: replay.Result{Mode: replay.RebuildProgress, Read: 10, FirstSeq: 1, LastSeq: 10, Counted: 7, NotCounted: 2, Poison: 1,
			FromTable: 4, Duration: time.Second, Diff: &store.ProgressDiff{LiveRows: 5, RebuiltRows: 6, Changed: 2, Missing: 1, Extra: 0,
				First: []store.ProgressDiffRow{
					{StudentID: student, QuizID: quiz, LiveAttempts: &one, LiveBest: &nine, RebuiltAttempts: &two, RebuiltBest: &nine, LiveCourseID: &course, RebuiltCourseID: &other},
					{StudentID: student, QuizID: course, RebuiltAttempts: &one, RebuiltBest: &two, RebuiltCourseID: &course},
				}}},
		err: errors.New("swap progress: lock timeout"),
		want: `replay rebuild progress: stream seq 1 to 10
  read         10  events
  counted      7   events of attempts stored as recorded
  not counted  2   events of attempts not stored as recorded (yet), or counted already
  poison       1   undecodable events, skipped
  from table   4   recorded attempts counted from the attempts table (event outside the range, or stored after it was read)
  duration     1s  
  rate         10  events/s
  stopped          swap progress: lock timeout

progress: 5 live rows, 6 rebuilt rows: 2 changed, 1 missing from live, 0 only in live
  KIND     STUDENT                               QUIZ                                  LIVE attempts/best                               REBUILT attempts/best
  changed  00000000-0000-0000-0000-000000000005  00000000-0000-0000-0000-00000000000a  1/9 course 00000000-0000-0000-0000-00000000000c  2/9 course 00000000-0000-0000-0000-00000000000d
  missing  00000000-0000-0000-0000-000000000005  00000000-0000-0000-0000-00000000000c  -                                                1/2
  ... and 1 more
`,
	}, {
		name: "rebuild, swapped",
		cfg:  replay.Config{Mode: replay.RebuildProgress, Swap: true},
		res: replay.Result{Mode: replay.RebuildProgress, Diff: &store.ProgressDiff{LiveRows: 3, RebuiltRows: 3},
			Swapped: true, CountedUnderLock: 2, SwapDuration: 1500 * time.Millisecond},
		want: `replay rebuild progress: no events in the range
  read         0   events
  counted      0   events of attempts stored as recorded
  not counted  0   events of attempts not stored as recorded (yet), or counted already
  poison       0   undecodable events, skipped
  from table   0   recorded attempts counted from the attempts table (event outside the range, or stored after it was read)
  duration     0s  
  rate         0   events/s

progress: 3 live rows, 3 rebuilt rows: no differences
progress swapped: the rebuilt table is live (2 attempt(s) stored meanwhile counted under the lock, swap took 1.5s)
`,
	}, {
		name: "rebuild checks, drift kept",
		cfg:  replay.Config{Mode: replay.RebuildChecks, KeepShadow: true},
		res: replay.Result{Mode: replay.RebuildChecks, Read: 9, FirstSeq: 1, LastSeq: 9, Counted: 6, NotCounted: 2, Poison: 1, FromTable: 3,
			Duration: time.Second, Checks: &store.CheckDiff{LiveRows: 3, RebuiltRows: 4, Changed: 1, Missing: 1, LivePasses: 0, RebuiltPasses: 1,
				PassesMissing: 1, First: []store.CheckDiffRow{
					{CheckID: quiz, StudentID: student, LiveStatus: &errorStatus, RebuiltStatus: &passedStatus},
					{CheckID: course, StudentID: student, RebuiltStatus: &passedStatus},
				}}},
		want: `replay rebuild checks: stream seq 1 to 9
  read       9   events
  changed    6   check rows the events inserted or advanced
  unchanged  2   events folded into a row of their batch, or finding it as advanced already
  poison     1   undecodable events, skipped
  from live  3   live rows folded in (their events gone from the stream, or stored after it was read)
  duration   1s  
  rate       9   events/s

checks: 3 live rows, 4 rebuilt rows: 1 changed, 1 missing from live, 0 only in live
exercises passed: 0 live rows, 1 rebuilt rows: 0 changed, 1 missing from live, 0 only in live
  KIND     CHECK                                 STUDENT                               LIVE status  REBUILT status
  changed  00000000-0000-0000-0000-00000000000a  00000000-0000-0000-0000-000000000005  error        passed
  missing  00000000-0000-0000-0000-00000000000c  00000000-0000-0000-0000-000000000005  -            passed
live checks untouched (--swap replaces them); the rebuilt tables are kept as checks_rebuild and exercise_passes_rebuild, and go stale as workers write
`,
	}} {
		var b bytes.Buffer
		tc.res.WriteText(&b, tc.cfg, tc.err)
		if b.String() != tc.want {
			t.Errorf("%s: printed\n%s\nwant\n%s", tc.name, b.String(), tc.want)
		}
	}

	interrupted := fmt.Errorf("%w; events before seq 21 are settled", replay.ErrInterrupted)
	if err := resumeHint(interrupted, replay.Result{ResumeSeq: 21}); !errors.Is(err, replay.ErrInterrupted) ||
		err.Error() != "replay: interrupted; events before seq 21 are settled: run again with --from-seq 21 to go on" {
		t.Errorf("an interrupted replay's error: %v", err)
	}
	if err := resumeHint(interrupted, replay.Result{}); err != interrupted {
		t.Errorf("an interrupted replay with nothing to resume: %v, want the error as it was", err)
	}
}

// eventAnswers converts the client's answers into an event's.
func eventAnswers(in []client.Answer) []events.Answer {
	out := make([]events.Answer, len(in))
	for i, a := range in {
		out[i] = events.Answer(a)
	}
	return out
}
