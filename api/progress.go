package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

type courseProgressJSON struct {
	CourseID         uuid.UUID         `json:"course_id"`
	QuizzesTotal     int               `json:"quizzes_total"`
	QuizzesAttempted int               `json:"quizzes_attempted"`
	Attempts         int               `json:"attempts"`
	BestScores       map[uuid.UUID]int `json:"best_scores"`
	ExercisesTotal   int               `json:"exercises_total"`
	ExercisesPassed  int               `json:"exercises_passed"`
}

// getProgress answers from the read model (or the progress projection in
// PostgreSQL, api/readmodel.go) shaped over every course of the content
// snapshot. It counts recorded attempts only.
func (s *Server) getProgress(c echo.Context) error {
	rows, err := s.progressRows(c.Request().Context(), session(c).Student.ID)
	if err != nil {
		return err
	}
	snap := s.content.Load()
	out := make([]courseProgressJSON, len(snap.order))
	at := make(map[uuid.UUID]int, len(snap.order))
	for i, course := range snap.order {
		at[course.id] = i
		out[i] = courseProgressJSON{CourseID: course.id, QuizzesTotal: len(course.quizIDs), BestScores: map[uuid.UUID]int{},
			ExercisesTotal: course.exercises}
	}
	for _, r := range rows {
		i, ok := at[r.CourseID]
		if !ok {
			continue // a course since removed from the content
		}
		if r.QuizID == uuid.Nil {
			out[i].ExercisesPassed = r.ExercisesPassed
			continue
		}
		out[i].QuizzesAttempted++
		out[i].Attempts += r.Attempts
		out[i].BestScores[r.QuizID] = r.BestScore
	}
	return writeJSON(c, http.StatusOK, progressBody(out))
}
