package store

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// demoNamespace roots the ids of demo content, so that two databases seeded
// alike hold the same ids.
var demoNamespace = uuid.MustParse("6f1c0d52-7d8e-4b8a-9d0e-1a2b3c4d5e6f")

// DemoSize shapes DemoContent.
type DemoSize struct {
	Courses, Quizzes, Questions, Choices int
	// Exams adds the timed quizzes (DemoSprintID, DemoExamID) at the end
	// of the last course.
	Exams bool
	// Exercises adds the programming exercises (DemoExerciseSumID and two
	// more) to the first course.
	Exercises bool
}

// DefaultDemo is the demo content the seed subcommand loads: 20 courses of
// 10 quizzes of 10 questions of 4 choices, one of them correct, and two
// timed quizzes more in the last course, and three programming exercises
// in the first.
var DefaultDemo = DemoSize{Courses: 20, Quizzes: 10, Questions: 10, Choices: 4, Exams: true, Exercises: true}

// The demo's timed quizzes (API v1.1), at the end of the last course when
// DemoSize.Exams is set: a 60-second sprint open to any number of
// sessions, and a 20-minute exam a student may sit at most twice. They
// are not in a course of their own, so that the demo keeps its number of
// courses (and its first course its quizzes).
var (
	DemoSprintID = demoID("exams/quiz-01")
	DemoExamID   = demoID("exams/quiz-02")
)

func demoID(name string) uuid.UUID { return uuid.NewSHA1(demoNamespace, []byte(name)) }

// DemoContent returns deterministic demo content of the given size: ids are
// derived from names, and the correct choice of each question is fixed by
// its position.
func DemoContent(size DemoSize) []Course {
	id := demoID
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
	if size.Exams && len(courses) > 0 {
		last := &courses[len(courses)-1]
		last.Quizzes = append(last.Quizzes, demoExams(last.ID, size)...)
	}
	if size.Exercises && len(courses) > 0 {
		courses[0].Exercises = DemoExercises(courses[0].ID)
	}
	return courses
}

// demoExams returns the timed quizzes of a course, their questions shaped
// as size says.
func demoExams(course uuid.UUID, size DemoSize) []Quiz {
	var quizzes []Quiz
	for q, exam := range []struct {
		title string
		limit time.Duration
		max   int
	}{
		{"Sprint: 60 seconds", time.Minute, 0},
		{"Midterm: 20 minutes", 20 * time.Minute, 2},
	} {
		qname := fmt.Sprintf("exams/quiz-%02d", q+1)
		quiz := Quiz{ID: demoID(qname), CourseID: course, Title: exam.title, TimeLimit: exam.limit, MaxSessions: exam.max}
		for u := range size.Questions {
			uname := fmt.Sprintf("%s/question-%02d", qname, u+1)
			question := Question{ID: demoID(uname), Prompt: fmt.Sprintf("Exam question %d?", u+1)}
			for h := range size.Choices {
				question.Choices = append(question.Choices, Choice{
					ID:      demoID(fmt.Sprintf("%s/choice-%d", uname, h+1)),
					Text:    fmt.Sprintf("Answer %c", 'A'+h),
					Correct: h == (q+u)%size.Choices,
				})
			}
			quiz.Questions = append(quiz.Questions, question)
		}
		quizzes = append(quizzes, quiz)
	}
	return quizzes
}

// The demo's programming exercises (API v1.1, "Code checks"), in the first
// course when DemoSize.Exercises is set.
var (
	DemoExerciseSumID     = demoID("exercises/sum")
	DemoExerciseReverseID = demoID("exercises/reverse")
	DemoExerciseHelloID   = demoID("exercises/hello")
)

// DemoExercises returns the demo's exercises of a course: in Python and
// Go, each with shown and hidden test cases.
func DemoExercises(course uuid.UUID) []Exercise {
	return []Exercise{
		{ID: DemoExerciseSumID, CourseID: course, Title: "Sum of two numbers",
			Statement: "Read two integers separated by a space from one line of standard input and print their sum.",
			Languages: []string{"python", "go"},
			Tests: []TestCase{{Stdin: "1 2\n", Stdout: "3\n"}, {Stdin: "-5 5\n", Stdout: "0\n"},
				{Stdin: "1000000000 2000000000\n", Stdout: "3000000000\n", Hidden: true}}},
		{ID: DemoExerciseReverseID, CourseID: course, Title: "Reverse a line",
			Statement: "Read one line of standard input and print it reversed.",
			Languages: []string{"python", "go"},
			Tests: []TestCase{{Stdin: "abc\n", Stdout: "cba\n"}, {Stdin: "racecar\n", Stdout: "racecar\n", Hidden: true},
				{Stdin: "quiz stream\n", Stdout: "maerts ziuq\n", Hidden: true}}},
		{ID: DemoExerciseHelloID, CourseID: course, Title: "Hello, world",
			Statement: "Print \"Hello, world!\" on one line.",
			Languages: []string{"python"},
			Tests:     []TestCase{{Stdin: "", Stdout: "Hello, world!\n"}}},
	}
}
