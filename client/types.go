package client

import "time"

// Student is an account, as GET /api/v1/user answers it.
type Student struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CourseSummary is one entry of the course list.
type CourseSummary struct {
	ID      string   `json:"id"`
	Slug    string   `json:"slug"`
	Title   string   `json:"title"`
	QuizIDs []string `json:"quiz_ids"`
}

// Course is one course with its quizzes' titles and sizes.
type Course struct {
	ID          string       `json:"id"`
	Slug        string       `json:"slug"`
	Title       string       `json:"title"`
	QuizIDs     []string     `json:"quiz_ids"`
	Description string       `json:"description"`
	Quizzes     []CourseQuiz `json:"quizzes"`
	// Exercises are the course's programming exercises (v1.1).
	Exercises []CourseExercise `json:"exercises"`
}

// CourseExercise is an exercise as a Course lists it.
type CourseExercise struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Languages []string `json:"languages"`
}

// Exercise is a programming exercise: its statement, the languages a
// program may be written in, and its shown test cases as examples.
type Exercise struct {
	ID        string    `json:"id"`
	CourseID  string    `json:"course_id"`
	Title     string    `json:"title"`
	Statement string    `json:"statement"`
	Languages []string  `json:"languages"`
	Examples  []Example `json:"examples"`
}

// Example is a shown test case: a program given Stdin must print Stdout.
type Example struct {
	Stdin  string `json:"stdin"`
	Stdout string `json:"stdout"`
}

// CourseQuiz is a quiz as a Course lists it.
type CourseQuiz struct {
	ID            string `json:"id"`
	Title         string `json:"title"`
	QuestionCount int    `json:"question_count"`
	Timing
}

// Timing is what makes a quiz timed (API v1.1, "Timed exams"): a timed
// quiz is taken through a session; all of it is unset for an untimed one.
type Timing struct {
	// TimeLimitS is the session's length in seconds; nil for an untimed quiz.
	TimeLimitS *int `json:"time_limit_s,omitempty"`
	// OpensAt and ClosesAt bound when sessions may start (and ClosesAt
	// when they end); nil when unbounded.
	OpensAt  *time.Time `json:"opens_at,omitempty"`
	ClosesAt *time.Time `json:"closes_at,omitempty"`
	// MaxSessions is how many sessions a student may start; nil: no limit.
	MaxSessions *int `json:"max_sessions,omitempty"`
}

// Timed reports whether the quiz is taken through sessions.
func (t Timing) Timed() bool { return t.TimeLimitS != nil }

// Quiz is a quiz's questions and choices, never its correct answers.
type Quiz struct {
	ID        string     `json:"id"`
	CourseID  string     `json:"course_id"`
	Title     string     `json:"title"`
	Questions []Question `json:"questions"`
	Timing
}

// Question is one question of a Quiz.
type Question struct {
	ID      string   `json:"id"`
	Prompt  string   `json:"prompt"`
	Choices []Choice `json:"choices"`
}

// Choice is one possible answer to a Question.
type Choice struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// CacheInfo is what a content response says about caching it.
type CacheInfo struct {
	// ETag is the response's strong ETag, to send back with IfNoneMatch.
	ETag string
	// NotModified is true when the API answered 304 to IfNoneMatch: the
	// caller's copy is current, and the value returned with it is zero.
	NotModified bool
	// MaxAge is Cache-Control's max-age, 0 when absent.
	MaxAge time.Duration
}

// Answer is the choice a student picked for one question.
type Answer struct {
	QuestionID string `json:"question_id"`
	ChoiceID   string `json:"choice_id"`
}

// Attempt statuses, as the HTTP contract names them.
const (
	// StatusAccepted: in the event log, not yet in the database.
	StatusAccepted = "accepted"
	// StatusRecorded: in the database; progress counts it.
	StatusRecorded = "recorded"
	// StatusFailed: it could not be stored and was set aside for an
	// operator; the student may submit again.
	StatusFailed = "failed"
)

// Attempt is one graded quiz attempt; Score is final from the first answer.
type Attempt struct {
	AttemptID   string    `json:"attempt_id"`
	QuizID      string    `json:"quiz_id"`
	StudentID   string    `json:"student_id"`
	Score       int       `json:"score"`
	MaxScore    int       `json:"max_score"`
	Status      string    `json:"status"`
	SubmittedAt time.Time `json:"submitted_at"`
}

// Submission is what SubmitAttempt returns: the attempt the API accepted
// and the key that makes submitting it again safe.
type Submission struct {
	Attempt
	// IdempotencyKey was sent with every try. It is set even when
	// SubmitAttempt fails: passing it to WithIdempotencyKey resubmits the
	// same logical submission, which the API answers with the original
	// attempt if it was stored, and never stores twice.
	IdempotencyKey string
	// Tries is how many requests were sent (1 when the first was answered).
	Tries int
}

// AttemptsQuery selects a page of the caller's attempts; its zero value is
// the first page of all of them, 20 long.
type AttemptsQuery struct {
	// QuizID keeps only this quiz's attempts; "" means all.
	QuizID string
	// Limit is the page size: 0 means the API's default (20); it is capped
	// at 100 by the API.
	Limit int
	// Cursor is a previous page's NextCursor; "" means the first page.
	Cursor string
}

// AttemptPage is one page of attempts, newest first.
type AttemptPage struct {
	Attempts []Attempt `json:"attempts"`
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string `json:"next_cursor"`
}

// Progress is a student's progress over every course.
type Progress struct {
	Courses []CourseProgress `json:"courses"`
}

// CourseProgress counts a student's recorded attempts in one course.
type CourseProgress struct {
	CourseID         string `json:"course_id"`
	QuizzesTotal     int    `json:"quizzes_total"`
	QuizzesAttempted int    `json:"quizzes_attempted"`
	Attempts         int    `json:"attempts"`
	// BestScores maps a quiz id to its best recorded score; it holds only
	// quizzes with at least one recorded attempt.
	BestScores map[string]int `json:"best_scores"`
	// ExercisesTotal is the course's exercises; ExercisesPassed those with
	// a passed check (stored).
	ExercisesTotal  int `json:"exercises_total"`
	ExercisesPassed int `json:"exercises_passed"`
}
