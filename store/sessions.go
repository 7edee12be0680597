package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Who finalized an exam session, as exam_finals stores it.
const (
	FinalizedByStudent  = "student"
	FinalizedByDeadline = "deadline"
)

// ExamSession is a stored exam session: its ExamStarted event.
type ExamSession struct {
	ID             uuid.UUID
	StudentID      uuid.UUID
	QuizID         uuid.UUID
	CourseID       uuid.UUID
	IdempotencyKey string // empty when the client sent none
	Number         int    // the student's n-th session of the quiz
	StartedAt      time.Time
	Deadline       time.Time
	GraceS         int
	StreamSeq      uint64
}

// ExamAnswer is a session's answer to one question: its save with the
// highest seq. ChoiceID is nil for a cleared answer.
type ExamAnswer struct {
	SessionID  uuid.UUID
	QuestionID uuid.UUID
	ChoiceID   *uuid.UUID
	Seq        int64
	SavedAt    time.Time
	StreamSeq  uint64
}

// ExamFinal is how a session ended: by the student or by the deadline,
// with the attempt it became.
type ExamFinal struct {
	SessionID   uuid.UUID
	By          string
	AttemptID   uuid.UUID
	SubmittedAt time.Time
	StreamSeq   uint64
}

// ExamBatch is what one batch of exam events writes.
type ExamBatch struct {
	Sessions []ExamSession
	Answers  []ExamAnswer
	Finals   []ExamFinal
}

// ExamWriteResult counts the rows a batch inserted or changed.
type ExamWriteResult struct {
	Sessions, Answers, Finals int64
}

// Changed is the number of rows the batch inserted or changed.
func (r ExamWriteResult) Changed() int64 { return r.Sessions + r.Answers + r.Finals }

// WriteExamEvents stores a batch of exam events in one transaction, in any
// order and any number of times: a session or a final is inserted once, and
// an answer only replaces one with a lower seq (the highest seq wins,
// whatever order the saves come in). It returns what it changed, or an
// error after which nothing was written.
func (s *Store) WriteExamEvents(ctx context.Context, b ExamBatch) (ExamWriteResult, error) {
	return s.writeExamEvents(ctx, b, true)
}

// TryWriteExamEvents is WriteExamEvents rolled back: it returns what the
// batch would change, and changes nothing.
func (s *Store) TryWriteExamEvents(ctx context.Context, b ExamBatch) (ExamWriteResult, error) {
	return s.writeExamEvents(ctx, b, false)
}

func (s *Store) writeExamEvents(ctx context.Context, b ExamBatch, commit bool) (ExamWriteResult, error) {
	var res ExamWriteResult
	if len(b.Sessions)+len(b.Answers)+len(b.Finals) == 0 {
		return res, nil
	}
	// Rows are written in key order, so that concurrent writers never
	// deadlock; of several saves of one question the highest seq is kept.
	sessions := slices.SortedFunc(slices.Values(b.Sessions), func(a, b ExamSession) int { return compareUUID(a.ID, b.ID) })
	finals := slices.SortedFunc(slices.Values(b.Finals), func(a, b ExamFinal) int { return compareUUID(a.SessionID, b.SessionID) })
	answers := slices.SortedFunc(slices.Values(b.Answers), func(a, b ExamAnswer) int {
		return cmp.Or(compareUUID(a.SessionID, b.SessionID), compareUUID(a.QuestionID, b.QuestionID), cmp.Compare(b.Seq, a.Seq))
	})
	answers = slices.CompactFunc(answers, func(a, b ExamAnswer) bool {
		return a.SessionID == b.SessionID && a.QuestionID == b.QuestionID
	})
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(sessions) > 0 {
			var (
				id, student, quiz, course []uuid.UUID
				key                       []*string
				number, grace             []int32
				started, deadline         []time.Time
				seq                       []int64
			)
			for _, x := range sessions {
				id, student, quiz, course = append(id, x.ID), append(student, x.StudentID), append(quiz, x.QuizID), append(course, x.CourseID)
				var k *string
				if x.IdempotencyKey != "" {
					k = &x.IdempotencyKey
				}
				n, err := int32Of("number", int64(x.Number))
				if err != nil {
					return fmt.Errorf("insert exam sessions: %w", err)
				}
				g, err := int32Of("grace_s", int64(x.GraceS))
				if err != nil {
					return fmt.Errorf("insert exam sessions: %w", err)
				}
				key, number, grace = append(key, k), append(number, n), append(grace, g)
				started, deadline, seq = append(started, x.StartedAt), append(deadline, x.Deadline), append(seq, int64(x.StreamSeq))
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO exam_sessions (id, student_id, quiz_id, course_id, idempotency_key, number,
					started_at, deadline, grace_s, stream_seq)
				SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int[],
					$7::timestamptz[], $8::timestamptz[], $9::int[], $10::bigint[])
				ON CONFLICT (id) DO NOTHING`,
				id, student, quiz, course, key, number, started, deadline, grace, seq)
			if err != nil {
				return fmt.Errorf("insert exam sessions: %w", err)
			}
			res.Sessions = tag.RowsAffected()
		}
		if len(answers) > 0 {
			var (
				session, question []uuid.UUID
				choice            []*uuid.UUID
				seq, streamSeq    []int64
				saved             []time.Time
			)
			for _, a := range answers {
				session, question, choice = append(session, a.SessionID), append(question, a.QuestionID), append(choice, a.ChoiceID)
				seq, streamSeq, saved = append(seq, a.Seq), append(streamSeq, int64(a.StreamSeq)), append(saved, a.SavedAt)
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO exam_answers AS a (session_id, question_id, choice_id, seq, saved_at, stream_seq)
				SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::timestamptz[], $6::bigint[])
				ON CONFLICT (session_id, question_id) DO UPDATE SET choice_id = EXCLUDED.choice_id,
					seq = EXCLUDED.seq, saved_at = EXCLUDED.saved_at, stream_seq = EXCLUDED.stream_seq
				WHERE EXCLUDED.seq > a.seq`,
				session, question, choice, seq, saved, streamSeq)
			if err != nil {
				return fmt.Errorf("upsert exam answers: %w", err)
			}
			res.Answers = tag.RowsAffected()
		}
		if len(finals) > 0 {
			var (
				session, attempt []uuid.UUID
				by               []string
				submitted        []time.Time
				seq              []int64
			)
			for _, f := range finals {
				session, attempt, by = append(session, f.SessionID), append(attempt, f.AttemptID), append(by, f.By)
				submitted, seq = append(submitted, f.SubmittedAt), append(seq, int64(f.StreamSeq))
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO exam_finals (session_id, finalized_by, attempt_id, submitted_at, stream_seq)
				SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::bigint[])
				ON CONFLICT (session_id) DO NOTHING`,
				session, by, attempt, submitted, seq)
			if err != nil {
				return fmt.Errorf("insert exam finals: %w", err)
			}
			res.Finals = tag.RowsAffected()
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return res, wrap("write exam events", err)
}

func compareUUID(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }

// ExamSessionRow is a stored session with its answers (in question id
// order) and, once it ended, its final.
type ExamSessionRow struct {
	ExamSession
	Answers []ExamAnswer
	Final   *ExamFinal
}

// examSessionQuery selects sessions with their answers and finals; the
// caller adds the WHERE clause on s and the order.
const examSessionQuery = `
	SELECT s.id, s.student_id, s.quiz_id, s.course_id, coalesce(s.idempotency_key, ''), s.number,
		s.started_at, s.deadline, s.grace_s, s.stream_seq,
		f.finalized_by, f.attempt_id, f.submitted_at, f.stream_seq,
		(SELECT coalesce(json_agg(json_build_object('q', a.question_id, 'c', a.choice_id, 's', a.seq,
			't', a.saved_at, 'n', a.stream_seq) ORDER BY a.question_id), '[]')
		 FROM exam_answers a WHERE a.session_id = s.id)
	FROM exam_sessions s LEFT JOIN exam_finals f ON f.session_id = s.id`

func scanExamSession(row pgx.CollectableRow) (ExamSessionRow, error) {
	var (
		r         ExamSessionRow
		seq       int64
		by        *string
		attempt   *uuid.UUID
		submitted *time.Time
		finalSeq  *int64
		answers   []byte
	)
	err := row.Scan(scanID(&r.ID), scanID(&r.StudentID), scanID(&r.QuizID), scanID(&r.CourseID), &r.IdempotencyKey, &r.Number,
		&r.StartedAt, &r.Deadline, &r.GraceS, &seq, &by, &attempt, &submitted, &finalSeq, &answers)
	if err != nil {
		return r, err
	}
	r.StreamSeq = uint64(seq)
	if by != nil {
		r.Final = &ExamFinal{SessionID: r.ID, By: *by, AttemptID: *attempt, SubmittedAt: *submitted, StreamSeq: uint64(*finalSeq)}
	}
	var as []struct {
		Q uuid.UUID  `json:"q"`
		C *uuid.UUID `json:"c"`
		S int64      `json:"s"`
		T time.Time  `json:"t"`
		N int64      `json:"n"`
	}
	if err := json.Unmarshal(answers, &as); err != nil {
		return r, fmt.Errorf("decode answers: %w", err)
	}
	r.Answers = make([]ExamAnswer, len(as))
	for i, a := range as {
		r.Answers[i] = ExamAnswer{SessionID: r.ID, QuestionID: a.Q, ChoiceID: a.C, Seq: a.S, SavedAt: a.T.UTC(), StreamSeq: uint64(a.N)}
	}
	return r, nil
}

// GetExamSession returns one of a student's sessions with its answers and
// final, or ErrNotFound when it is unknown or another student's.
func (s *Store) GetExamSession(ctx context.Context, studentID, id uuid.UUID) (ExamSessionRow, error) {
	rows, _ := s.pool.Query(ctx, examSessionQuery+` WHERE s.id = $1 AND s.student_id = $2`, id, studentID)
	r, err := pgx.CollectExactlyOneRow(rows, scanExamSession)
	return r, wrap("get exam session", err)
}

// ListExamSessions returns a student's sessions (of one quiz, unless quiz
// is uuid.Nil), newest first: started_at, then id, descending.
func (s *Store) ListExamSessions(ctx context.Context, studentID, quizID uuid.UUID) ([]ExamSessionRow, error) {
	sql, args := examSessionQuery+` WHERE s.student_id = $1`, []any{studentID}
	if quizID != uuid.Nil {
		sql, args = sql+` AND s.quiz_id = $2`, append(args, quizID)
	}
	rows, _ := s.pool.Query(ctx, sql+` ORDER BY s.started_at DESC, s.id DESC`, args...)
	out, err := pgx.CollectRows(rows, scanExamSession)
	return out, wrap("list exam sessions", err)
}
