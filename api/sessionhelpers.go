package api

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

// timedJSON is what a timed quiz adds to Quiz and to its entry in
// Course.quizzes: an untimed quiz's bodies carry none of it.
type timedJSON struct {
	TimeLimitS  int        `json:"time_limit_s"`
	OpensAt     *time.Time `json:"opens_at"`
	ClosesAt    *time.Time `json:"closes_at"`
	MaxSessions *int       `json:"max_sessions"`
}

// examRules is what the API enforces of a timed quiz, from its snapshot.
type examRules struct {
	timeLimit         time.Duration
	opensAt, closesAt time.Time
	maxSessions       int
	grace             *time.Duration
	// questions is the answer key a session starts with, in quiz order.
	questions []events.ExamQuestion
	order     map[uuid.UUID]int
	json      *timedJSON
}

// newExamRules returns a quiz's exam rules, nil for an untimed quiz.
func newExamRules(q store.Quiz) *examRules {
	if q.TimeLimit <= 0 {
		return nil
	}
	r := &examRules{timeLimit: q.TimeLimit, opensAt: q.OpensAt, closesAt: q.ClosesAt, maxSessions: q.MaxSessions,
		grace: q.Grace, order: map[uuid.UUID]int{}, json: &timedJSON{TimeLimitS: int(q.TimeLimit / time.Second)}}
	if !q.OpensAt.IsZero() {
		t := q.OpensAt.UTC()
		r.json.OpensAt = &t
	}
	if !q.ClosesAt.IsZero() {
		t := q.ClosesAt.UTC()
		r.json.ClosesAt = &t
	}
	if q.MaxSessions > 0 {
		n := q.MaxSessions
		r.json.MaxSessions = &n
	}
	for i, qu := range q.Questions {
		eq := events.ExamQuestion{ID: qu.ID, Choices: make([]events.ExamChoice, len(qu.Choices))}
		for j, ch := range qu.Choices {
			eq.Choices[j] = events.ExamChoice{ID: ch.ID, Correct: ch.Correct}
		}
		r.questions = append(r.questions, eq)
		r.order[qu.ID] = i
	}
	return r
}

// timing returns the JSON fields of a timed quiz, nil for an untimed one.
func (r *examRules) timing() *timedJSON {
	if r == nil {
		return nil
	}
	return r.json
}

type savedAnswerJSON struct {
	QuestionID uuid.UUID  `json:"question_id"`
	ChoiceID   *uuid.UUID `json:"choice_id"`
	Seq        int64      `json:"seq"`
	SavedAt    time.Time  `json:"saved_at"`
}

type sessionJSON struct {
	SessionID  uuid.UUID         `json:"session_id"`
	QuizID     uuid.UUID         `json:"quiz_id"`
	StudentID  uuid.UUID         `json:"student_id"`
	StartedAt  time.Time         `json:"started_at"`
	Deadline   time.Time         `json:"deadline"`
	GraceS     int               `json:"grace_s"`
	State      string            `json:"state"`
	Answers    []savedAnswerJSON `json:"answers"`
	AttemptID  *uuid.UUID        `json:"attempt_id"`
	ServerTime time.Time         `json:"server_time"`
}

func savedAnswer(a events.AnswerSaved) savedAnswerJSON {
	return savedAnswerJSON{QuestionID: a.QuestionID, ChoiceID: a.ChoiceID, Seq: a.Seq, SavedAt: a.SavedAt.UTC()}
}

// render is a session's body.
func (x *exams) render(st *events.ExamSession, now time.Time) sessionJSON {
	s := st.Started
	out := sessionJSON{
		SessionID: s.SessionID, QuizID: s.QuizID, StudentID: s.StudentID, StartedAt: s.StartedAt.UTC(),
		Deadline: s.Deadline.UTC(), GraceS: s.GraceS, State: sessionOpen, Answers: []savedAnswerJSON{},
		ServerTime: now.UTC(),
	}
	if f := st.Final; f != nil {
		out.State = sessionSubmitted
		if f.By == events.FinalizedByDeadline {
			out.State = sessionExpired
		}
		out.AttemptID = &f.AttemptID
	}
	var order map[uuid.UUID]int
	if q, ok := x.s.content.Load().quizzes[s.QuizID]; ok && q.exam != nil {
		order = q.exam.order
	}
	for _, a := range st.Answers {
		out.Answers = append(out.Answers, savedAnswer(a))
	}
	slices.SortFunc(out.Answers, func(a, b savedAnswerJSON) int {
		ia, oka := order[a.QuestionID]
		ib, okb := order[b.QuestionID]
		if oka && okb && ia != ib {
			return cmp.Compare(ia, ib)
		}
		return bytes.Compare(a.QuestionID[:], b.QuestionID[:])
	})
	return out
}

// fromRow is a stored session as a folded one, without its answer key
// (which reads do not need).
func fromRow(r store.ExamSessionRow) *events.ExamSession {
	st := events.NewExamSession()
	st.Started = &events.ExamStarted{
		SessionID: r.ID, StudentID: r.StudentID, QuizID: r.QuizID, CourseID: r.CourseID,
		IdempotencyKey: r.IdempotencyKey, Number: r.Number, StartedAt: r.StartedAt, Deadline: r.Deadline, GraceS: r.GraceS,
	}
	for _, a := range r.Answers {
		st.Answers[a.QuestionID] = events.AnswerSaved{SessionID: r.ID, StudentID: r.StudentID, QuizID: r.QuizID,
			QuestionID: a.QuestionID, ChoiceID: a.ChoiceID, Seq: a.Seq, SavedAt: a.SavedAt}
	}
	if f := r.Final; f != nil {
		st.Final = &events.ExamFinalized{SessionID: r.ID, StudentID: r.StudentID, QuizID: r.QuizID, CourseID: r.CourseID,
			By: f.By, AttemptID: f.AttemptID, SubmittedAt: f.SubmittedAt}
	}
	return st
}

// hash writes into h what of the rules a quiz's body does not show, so
// that the snapshot's version changes with it.
func (r *examRules) hash(h io.Writer) {
	if r != nil && r.grace != nil {
		fmt.Fprintf(h, "grace %s\n", *r.grace)
	}
}

// sessionLocks are a mutex per session, held by a request of this instance
// and forgotten when no request holds or waits for it.
type sessionLocks struct {
	mu   sync.Mutex
	held map[uuid.UUID]*sessionLock
}

type sessionLock struct {
	sync.Mutex
	users int
}

// lock takes the session's mutex and returns its release. A holder's work
// is bounded by the publish timeout, so waiting needs no context.
func (l *sessionLocks) lock(id uuid.UUID) (unlock func()) {
	l.mu.Lock()
	m := l.held[id]
	if m == nil {
		m = &sessionLock{}
		l.held[id] = m
	}
	m.users++
	l.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		l.mu.Lock()
		if m.users--; m.users == 0 {
			delete(l.held, id)
		}
		l.mu.Unlock()
	}
}
