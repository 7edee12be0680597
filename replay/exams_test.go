package replay_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/replay"
	"github.com/quizstream/quizstream/streams"
)

// examRows is the sessions projection, as text to compare.
func (f *fixture) examRows(t *testing.T) string {
	t.Helper()
	var out string
	for _, q := range []string{
		`SELECT id, student_id, quiz_id, number, started_at, deadline, grace_s, stream_seq FROM exam_sessions ORDER BY id`,
		`SELECT session_id, question_id, choice_id, seq, saved_at, stream_seq FROM exam_answers ORDER BY session_id, question_id`,
		`SELECT session_id, finalized_by, attempt_id, submitted_at, stream_seq FROM exam_finals ORDER BY session_id`,
	} {
		rows, err := f.db.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintln(vals...)
		}
		rows.Close()
	}
	return out
}

// Replay restores sessions and their answers too: the sessions projection
// is rebuilt from the exams stream through the exam workers' own writer,
// the highest seq of each question winning, and a replay over a live
// projection changes nothing.
func TestRestoreExams(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	exams, err := eventlog.NewExamLog(ctx, f.js, streams.ExamStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exams.Close)
	quiz := f.quizzes[0]
	read := 0
	var want []*events.ExamSession
	for i := range 3 {
		now := time.Now().UTC().Truncate(time.Microsecond)
		st := events.ExamStarted{SessionID: uuid.New(), StudentID: uuid.New(), QuizID: quiz.ID, CourseID: quiz.CourseID,
			Number: 1, StartedAt: now, Deadline: now.Add(time.Minute), GraceS: 30}
		for _, q := range quiz.Questions {
			eq := events.ExamQuestion{ID: q.ID}
			for _, ch := range q.Choices {
				eq.Choices = append(eq.Choices, events.ExamChoice{ID: ch.ID, Correct: ch.Correct})
			}
			st.Questions = append(st.Questions, eq)
		}
		seq, err := exams.Append(ctx, events.ExamEvent{Started: &st}, 0)
		if err != nil {
			t.Fatal(err)
		}
		s := events.NewExamSession()
		s.Apply(events.ExamEvent{Started: &st}, seq)
		read++
		for k := range 6 {
			u := k % 4
			sv := events.AnswerSaved{SessionID: st.SessionID, StudentID: st.StudentID, QuizID: quiz.ID,
				QuestionID: quiz.Questions[u].ID, Seq: int64(k + 1), SavedAt: now}
			if k != 5 {
				sv.ChoiceID = &quiz.Questions[u].Choices[(i+k)%4].ID
			}
			if seq, err = exams.Append(ctx, events.ExamEvent{Saved: &sv}, s.LastSeq); err != nil {
				t.Fatal(err)
			}
			s.Apply(events.ExamEvent{Saved: &sv}, seq)
			read++
		}
		if i < 2 {
			if _, s, err = exams.Finalize(ctx, s, events.FinalizedByStudent, time.Now()); err != nil {
				t.Fatal(err)
			}
			read++
		}
		want = append(want, s)
	}
	cfg := f.config(t, replay.RestoreExams)
	res := f.run(t, cfg)
	// Of each session's saves, 5 and 6 supersede 1 and 2: they change nothing.
	wantCounts(t, "restore", res, counts{Read: int64(read), Stored: int64(read - 2*3), AlreadyPresent: 2 * 3})
	for _, s := range want {
		row, err := f.st.GetExamSession(ctx, s.Started.StudentID, s.Started.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if len(row.Answers) != 4 || (row.Final == nil) != (s.Final == nil) {
			t.Errorf("session %s: %d answers, final %v", s.Started.SessionID, len(row.Answers), row.Final)
		}
		for _, a := range row.Answers {
			if w := s.Answers[a.QuestionID]; w.Seq != a.Seq || (w.ChoiceID == nil) != (a.ChoiceID == nil) {
				t.Errorf("session %s question %s: seq %d, want %d", s.Started.SessionID, a.QuestionID, a.Seq, w.Seq)
			}
		}
	}
	restored := f.examRows(t)

	again := f.run(t, cfg)
	wantCounts(t, "again over the live projection", again, counts{Read: int64(read), AlreadyPresent: int64(read)})
	for _, table := range []string{"exam_sessions", "exam_answers", "exam_finals"} {
		if _, err := f.db.Exec(ctx, "DELETE FROM "+table); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t, cfg)
	if got := f.examRows(t); got != restored {
		t.Errorf("restored twice, the rows differ:\n%s\nand\n%s", got, restored)
	}
}

// Without an exams stream, there is nothing to restore.
func TestRestoreExamsWithoutStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config(t, replay.RestoreExams)
	cfg.ExamStream.Name = "NO_SUCH_STREAM"
	if _, err := replay.Run(t.Context(), cfg); !errors.Is(err, eventlog.ErrNoStream) {
		t.Errorf("replay without the stream: %v", err)
	}
}
