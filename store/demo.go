package store

import (
	"fmt"

	"github.com/google/uuid"
)

// demoNamespace roots the ids of demo content, so that two databases seeded
// alike hold the same ids.
var demoNamespace = uuid.MustParse("6f1c0d52-7d8e-4b8a-9d0e-1a2b3c4d5e6f")

// DemoSize shapes DemoContent.
type DemoSize struct {
	Courses, Quizzes, Questions, Choices int
}

// DefaultDemo is the demo content the seed subcommand loads: 20 courses of
// 10 quizzes of 10 questions of 4 choices, one of them correct.
var DefaultDemo = DemoSize{Courses: 20, Quizzes: 10, Questions: 10, Choices: 4}

// DemoContent returns deterministic demo content of the given size: ids are
// derived from names, and the correct choice of each question is fixed by
// its position.
func DemoContent(size DemoSize) []Course {
	id := func(name string) uuid.UUID { return uuid.NewSHA1(demoNamespace, []byte(name)) }
	courses := make([]Course, size.Courses)
	for c := range courses {
		cname := fmt.Sprintf("course-%02d", c+1)
		course := Course{
			ID:          id(cname),
			Slug:        cname,
			Title:       fmt.Sprintf("Course %d", c+1),
			Description: fmt.Sprintf("Demo course number %d.", c+1),
		}
		for q := range size.Quizzes {
			qname := fmt.Sprintf("%s/quiz-%02d", cname, q+1)
			quiz := Quiz{ID: id(qname), CourseID: course.ID, Title: fmt.Sprintf("Course %d, quiz %d", c+1, q+1)}
			for u := range size.Questions {
				uname := fmt.Sprintf("%s/question-%02d", qname, u+1)
				question := Question{ID: id(uname), Prompt: fmt.Sprintf("Question %d of quiz %d?", u+1, q+1)}
				correct := (c + q + u) % size.Choices
				for h := range size.Choices {
					question.Choices = append(question.Choices, Choice{
						ID:      id(fmt.Sprintf("%s/choice-%d", uname, h+1)),
						Text:    fmt.Sprintf("Answer %c", 'A'+h),
						Correct: h == correct,
					})
				}
				quiz.Questions = append(quiz.Questions, question)
			}
			course.Quizzes = append(course.Quizzes, quiz)
		}
		courses[c] = course
	}
	return courses
}
