package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
)

// content is what the students pick from.
type content struct {
	courses  []string          // course ids
	quizIDs  []string          // every quiz, for reads
	quizzes  []quiz            // the quizzes an attempt POST takes (untimed)
	timed    []quiz            // the timed quizzes (sessions), for the exam workload
	courseOf map[string]string // quiz id -> course id
}

type quiz struct {
	id        string
	timeLimit int // seconds; 0 for an untimed quiz
	questions []question
}

type question struct {
	id      string
	choices []string
}

// quizJSON is a quiz as the API serves it; TimeLimit is API v1.1's, whose
// timed quizzes take attempts through sessions only.
type quizJSON struct {
	ID        string `json:"id"`
	TimeLimit *int   `json:"time_limit_s"`
	Questions []struct {
		ID      string `json:"id"`
		Choices []struct {
			ID string `json:"id"`
		} `json:"choices"`
	} `json:"questions"`
}

// loadContent reads every course and quiz once, and picks the run's id.
func (r *runner) loadContent(ctx context.Context) error {
	r.runID = fmt.Sprintf("%x", rand.Uint64())
	if r.cfg.Floor != "" {
		return nil // the floor serves no content
	}
	courses, _, err := r.patient.Courses(ctx)
	if err != nil {
		return fmt.Errorf("load: read the courses: %w", err)
	}
	c := content{courseOf: map[string]string{}}
	for _, co := range courses {
		c.courses = append(c.courses, co.ID)
		for _, id := range co.QuizIDs {
			c.quizIDs = append(c.quizIDs, id)
			c.courseOf[id] = co.ID
		}
	}
	if len(c.quizIDs) == 0 {
		return errors.New("load: the API serves no quiz")
	}
	for _, id := range c.quizIDs {
		// Read raw: the client's Quiz does not carry v1.1's time limit.
		status, _, body, err := r.patient.Do(ctx, http.MethodGet, "/api/v1/quizzes/"+url.PathEscape(id), nil, nil)
		if err != nil {
			return fmt.Errorf("load: read quiz %s: %w", id, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("load: read quiz %s: status %d", id, status)
		}
		var q quizJSON
		if err := json.Unmarshal(body, &q); err != nil {
			return fmt.Errorf("load: read quiz %s: %w", id, err)
		}
		qz := quiz{id: q.ID}
		if q.TimeLimit != nil {
			qz.timeLimit = *q.TimeLimit
		}
		for _, qu := range q.Questions {
			if len(qu.Choices) == 0 {
				continue
			}
			var choices []string
			for _, ch := range qu.Choices {
				choices = append(choices, ch.ID)
			}
			qz.questions = append(qz.questions, question{id: qu.ID, choices: choices})
		}
		if qz.timeLimit > 0 {
			c.timed = append(c.timed, qz)
		} else {
			c.quizzes = append(c.quizzes, qz)
		}
	}
	if len(c.quizzes) == 0 && r.cfg.Weights.Submit > 0 && r.cfg.Exam == nil {
		return errors.New("load: the API serves no untimed quiz to submit attempts to")
	}
	r.content = c
	return nil
}
