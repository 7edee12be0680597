package readmodel_test

import (
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/store"
)

// eventFor is an attempt of student at q, all answers unanswered.
func eventFor(student uuid.UUID, q store.Quiz) events.AttemptSubmitted {
	return events.AttemptSubmitted{
		AttemptID: uuid.New(), StudentID: student, QuizID: q.ID, CourseID: q.CourseID,
		Answers: []events.Answer{}, AnswersHash: events.HashAnswers(q.ID, nil),
		Score: 0, MaxScore: len(q.Questions), SubmittedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}
