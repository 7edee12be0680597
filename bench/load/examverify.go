package load

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quizstream/quizstream/client"
)

// ExamVerification is the check after the exam workload: every session
// started is finalized once, as its student left it (submitted after a
// 202 to the submit, expired when left to the deadline, at the deadline),
// into one attempt recorded and listed once; the session's answers are
// exactly the highest-seq save of each question among those answered 202
// (a save whose outcome stayed unknown may win when its seq is the
// highest); and the attempt's score is the grading of those answers
// (with ExamConfig.Key) and the score its submit's 202 said.
type ExamVerification struct {
	// Sessions counts the sessions checked; Unstarted the students whose
	// start got no 202.
	Sessions  int `json:"sessions"`
	Unstarted int `json:"unstarted"`
	// Recorded counts the sessions finalized into an attempt that reads as
	// recorded; NotRecorded those that did not within VerifyTimeout.
	Recorded    int `json:"recorded"`
	NotRecorded int `json:"not_recorded"`
	// StateMismatched counts sessions whose state, attempt id, score or
	// submitted_at differs from what the student did and was told.
	StateMismatched int `json:"state_mismatched"`
	// AnswersExact counts sessions whose answers are the highest-seq
	// saves; AnswersMismatched the others. AmbiguousQuestions counts
	// questions whose highest save's outcome stayed unknown (either may win).
	AnswersExact       int `json:"answers_exact"`
	AnswersMismatched  int `json:"answers_mismatched"`
	AmbiguousQuestions int `json:"ambiguous_questions"`
	// Graded counts attempts whose score is the grading of the session's
	// answers by ExamConfig.Key; ScoreMismatched those whose is not (0
	// graded without a key).
	Graded          int `json:"graded"`
	ScoreMismatched int `json:"score_mismatched"`
	// Listed counts attempts in their student's list exactly once;
	// Missing, Duplicated and Extra (another attempt listed) the others.
	Listed     int `json:"listed"`
	Missing    int `json:"missing"`
	Duplicated int `json:"duplicated"`
	Extra      int `json:"extra"`
	// SettleSeconds is how long after the exam every attempt read as
	// recorded.
	SettleSeconds float64  `json:"settle_s"`
	Problems      []string `json:"problems,omitempty"`
	OK            bool     `json:"ok"`
}

// examCheck is one sitting's findings.
type examCheck struct {
	v        ExamVerification
	settled  time.Time
	problems []string
}

func (c *examCheck) problem(format string, args ...any) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// verifyExam checks every sitting, VerifyConcurrency at a time.
func (r *runner) verifyExam(ctx context.Context) (ExamVerification, error) {
	e := r.examRun
	begin := time.Now()
	deadline := begin.Add(r.cfg.VerifyTimeout)
	var v ExamVerification
	var mu sync.Mutex
	var last time.Time
	sem := make(chan struct{}, r.cfg.VerifyConcurrency)
	var wg sync.WaitGroup
	for _, x := range e.sittings {
		if !x.started {
			v.Unstarted++
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := r.verifySitting(ctx, e, x, deadline)
			mu.Lock()
			defer mu.Unlock()
			v.Sessions++
			v.Recorded += c.v.Recorded
			v.NotRecorded += c.v.NotRecorded
			v.StateMismatched += c.v.StateMismatched
			v.AnswersExact += c.v.AnswersExact
			v.AnswersMismatched += c.v.AnswersMismatched
			v.AmbiguousQuestions += c.v.AmbiguousQuestions
			v.Graded += c.v.Graded
			v.ScoreMismatched += c.v.ScoreMismatched
			v.Listed += c.v.Listed
			v.Missing += c.v.Missing
			v.Duplicated += c.v.Duplicated
			v.Extra += c.v.Extra
			for _, p := range c.problems {
				if len(v.Problems) < maxProblems {
					v.Problems = append(v.Problems, p)
				}
			}
			if c.settled.After(last) {
				last = c.settled
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return v, err
	}
	if !last.IsZero() {
		v.SettleSeconds = last.Sub(begin).Seconds()
	}
	graded := r.cfg.Exam.Key == nil || v.Graded == v.Sessions
	v.OK = v.Sessions > 0 && v.Recorded == v.Sessions && v.AnswersExact == v.Sessions && v.Listed == v.Sessions && graded &&
		v.NotRecorded+v.StateMismatched+v.AnswersMismatched+v.ScoreMismatched+v.Missing+v.Duplicated+v.Extra == 0 &&
		len(v.Problems) == 0
	return v, nil
}

// absent stands for a question with no answer saved, beside "" (cleared).
const absent = "\x00absent"

// wantAnswers returns, per question, the answers the session may hold:
// the highest-seq save answered 202, and any save of higher seq whose
// outcome stayed unknown (absent when none was answered 202).
func wantAnswers(saves map[string][]sentSave) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, q := range sortedKeys(saves) {
		best, bestSeq := absent, int64(-1)
		for _, sv := range saves[q] {
			if sv.outcome == saveAccepted && sv.seq > bestSeq {
				best, bestSeq = sv.choice, sv.seq
			}
		}
		may := map[string]bool{best: true}
		for _, sv := range saves[q] {
			if sv.outcome == saveUnknown && sv.seq > bestSeq {
				may[sv.choice] = true
			}
		}
		out[q] = may
	}
	return out
}

// sessionAnswers returns a session's answers (question id -> choice id,
// "" for a cleared one).
func sessionAnswers(s client.Session) map[string]string {
	out := map[string]string{}
	for _, a := range s.Answers {
		out[a.QuestionID] = ""
		if a.ChoiceID != nil {
			out[a.QuestionID] = *a.ChoiceID
		}
	}
	return out
}

// grade is the score of answers by key.
func grade(key, answers map[string]string) int {
	score := 0
	for q, choice := range answers {
		if c, ok := key[q]; ok && c == choice && choice != "" {
			score++
		}
	}
	return score
}

// verifySitting waits until x's session is finalized and its attempt
// recorded, then compares them with what the student sent and was told.
func (r *runner) verifySitting(ctx context.Context, e *examRun, x *sitting, deadline time.Time) examCheck {
	var c examCheck
	s := x.s
	id := x.session.SessionID
	var sess client.Session
	var att client.Attempt
	recorded := false
	for !recorded {
		var err error
		sess, err = s.own.Session(ctx, id)
		if err == nil && sess.State != client.SessionOpen && sess.AttemptID != "" {
			att, err = s.own.Attempt(ctx, sess.AttemptID)
			recorded = err == nil && att.Status == client.StatusRecorded
		}
		if recorded {
			c.settled = time.Now()
			break
		}
		if ctx.Err() != nil {
			return c
		}
		if time.Now().After(deadline) {
			c.v.NotRecorded = 1
			c.problem("student %s session %s: state %q attempt %q (%v) not recorded after %s", s.id, id, sess.State, sess.AttemptID, err, r.cfg.VerifyTimeout)
			return c
		}
		sleep(ctx, 200*time.Millisecond)
	}
	c.v.Recorded = 1

	// As the student left it.
	switch {
	case x.submit && (sess.State != client.SessionSubmitted || sess.AttemptID != x.attempt.AttemptID || att.Score != x.attempt.Score ||
		!att.SubmittedAt.Equal(x.attempt.SubmittedAt)):
		c.v.StateMismatched = 1
		c.problem("student %s session %s: %s into %+v; its submit's 202 said %+v", s.id, id, sess.State, att, x.attempt)
	case !x.submitter && (sess.State != client.SessionExpired || !att.SubmittedAt.Equal(x.session.Deadline)):
		c.v.StateMismatched = 1
		c.problem("student %s session %s: left to its deadline %s, it is %s with submitted_at %s", s.id, id, x.session.Deadline, sess.State, att.SubmittedAt)
	}

	// The highest-seq saves.
	s.mu.Lock()
	want := wantAnswers(x.saves)
	s.mu.Unlock()
	got := sessionAnswers(sess)
	exact := true
	for q, may := range want {
		if len(may) > 1 {
			c.v.AmbiguousQuestions++
		}
		g, ok := got[q]
		if !ok {
			g = absent
		}
		if !may[g] {
			exact = false
			c.problem("student %s session %s question %s: answer %q, the highest-seq save says %v", s.id, id, q, g, sortedKeys(may))
		}
	}
	for q := range got {
		if _, ok := want[q]; !ok {
			exact = false
			c.problem("student %s session %s question %s: answered %q, never saved", s.id, id, q, got[q])
		}
	}
	if exact {
		c.v.AnswersExact = 1
	} else {
		c.v.AnswersMismatched = 1
	}
	if key := r.cfg.Exam.Key; key != nil {
		if w := grade(key, got); att.Score == w && att.MaxScore == len(e.quiz.questions) {
			c.v.Graded = 1
		} else {
			c.v.ScoreMismatched = 1
			c.problem("student %s attempt %s: score %d/%d, the grading of its answers %d/%d", s.id, att.AttemptID, att.Score, att.MaxScore, w, len(e.quiz.questions))
		}
	}

	// Listed once, and nothing else: the students sit this exam alone.
	list, err := s.own.AllAttempts(ctx, client.AttemptsQuery{})
	if err != nil {
		c.problem("student %s: list attempts: %v", s.id, err)
		return c
	}
	n := 0
	for _, a := range list {
		if a.AttemptID == att.AttemptID {
			n++
		} else {
			c.v.Extra++
		}
	}
	switch {
	case n == 0:
		c.v.Missing = 1
		c.problem("student %s: attempt %s not listed", s.id, att.AttemptID)
	case n > 1:
		c.v.Duplicated = 1
		c.problem("student %s: attempt %s listed %d times", s.id, att.AttemptID, n)
	default:
		c.v.Listed = 1
	}
	return c
}
