package client_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// TestAgainstAPI runs every typed call against the real API.
func TestAgainstAPI(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	in := s.StartAPI(t, api.Config{})
	s.StartWorker(t, worker.Config{})
	quizzes := map[string]store.Quiz{} // with their answer keys, by id
	for _, q := range s.Quizzes {
		quizzes[q.ID.String()] = q
	}
	ctx := t.Context()
	anon := client.New(in.URL, client.Options{})
	t.Cleanup(anon.CloseIdleConnections)

	// Accounts.
	const email, password = "ada@example.com", "correct horse"
	ada, token, err := anon.Signup(ctx, email, "Ada", password)
	if err != nil || ada.Email != email || ada.Name != "Ada" || token == "" || ada.CreatedAt.IsZero() {
		t.Fatalf("signup: %+v %v", ada, err)
	}
	if _, _, err := anon.Signup(ctx, email, "Ada again", password); !client.IsCode(err, client.CodeConflict) {
		t.Errorf("signup with a taken email: %v", err)
	}
	if _, _, err := anon.Signup(ctx, "no-at-sign", "X", password); !client.IsCode(err, client.CodeInvalidRequest) {
		t.Errorf("signup with a bad email: %v", err)
	}
	if _, err := anon.Login(ctx, email, "wrong password"); !client.IsCode(err, client.CodeUnauthorized) || client.StatusOf(err) != 401 {
		t.Errorf("login with a wrong password: %v", err)
	}
	second, err := anon.Login(ctx, email, password)
	if err != nil || second == "" || second == token {
		t.Fatalf("login: %q %v", second, err)
	}
	asAda := anon.WithToken(token)
	if me, err := asAda.User(ctx); err != nil || me.ID != ada.ID || me.Email != email || !me.CreatedAt.Equal(ada.CreatedAt) {
		t.Errorf("user: %+v %v", me, err)
	}
	if _, err := anon.User(ctx); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("user without a token: %v", err)
	}

	// Content, with ETags.
	courses, info, err := anon.Courses(ctx)
	if err != nil || len(courses) != store.DefaultDemo.Courses || info.ETag == "" || info.MaxAge <= 0 {
		t.Fatalf("courses: %d, %+v, %v", len(courses), info, err)
	}
	if none, again, err := anon.Courses(ctx, client.IfNoneMatch(info.ETag)); err != nil || !again.NotModified || none != nil {
		t.Errorf("courses if none match: %+v %v", again, err)
	}
	course, _, err := anon.Course(ctx, courses[0].ID)
	if err != nil || len(course.Quizzes) != store.DefaultDemo.Quizzes || !slices.Equal(course.QuizIDs, courses[0].QuizIDs) {
		t.Fatalf("course: %+v %v", course, err)
	}
	quiz, qinfo, err := anon.Quiz(ctx, course.Quizzes[0].ID)
	want := quizzes[quiz.ID]
	if err != nil || quiz.CourseID != course.ID || len(quiz.Questions) != len(want.Questions) || quiz.Questions[0].ID != want.Questions[0].ID.String() {
		t.Fatalf("quiz: %+v %v", quiz, err)
	}
	if _, again, err := anon.Quiz(ctx, quiz.ID, client.IfNoneMatch(qinfo.ETag)); err != nil || !again.NotModified {
		t.Errorf("quiz if none match: %+v %v", again, err)
	}
	if _, _, err := anon.Quiz(ctx, uuid.NewString()); !client.IsCode(err, client.CodeNotFound) {
		t.Errorf("unknown quiz: %v", err)
	}

	// Attempts.
	sub, err := asAda.SubmitAttempt(ctx, quiz.ID, apptest.AnswersFor(want, 7))
	if err != nil || sub.Score != 7 || sub.MaxScore != len(want.Questions) || sub.StudentID != ada.ID || sub.QuizID != quiz.ID || sub.Tries != 1 {
		t.Fatalf("submit: %+v %v", sub, err)
	}
	reversed := slices.Clone(apptest.AnswersFor(want, 7))
	slices.Reverse(reversed)
	again, err := asAda.SubmitAttempt(ctx, quiz.ID, reversed, client.WithIdempotencyKey(sub.IdempotencyKey))
	if err != nil || again.AttemptID != sub.AttemptID || !again.SubmittedAt.Equal(sub.SubmittedAt) || again.Score != 7 {
		t.Errorf("resubmission: %+v %v, first %+v", again, err, sub)
	}
	if _, err := asAda.SubmitAttempt(ctx, quiz.ID, apptest.AnswersFor(want, 2), client.WithIdempotencyKey(sub.IdempotencyKey)); !client.IsCode(err, client.CodeIdempotencyKeyReused) {
		t.Errorf("the key with other answers: %v", err)
	}
	if _, err := asAda.SubmitAttempt(ctx, quiz.ID, []client.Answer{{QuestionID: "nope", ChoiceID: "nope"}}); !client.IsCode(err, client.CodeInvalidRequest) {
		t.Errorf("an unknown question: %v", err)
	}
	if _, err := anon.SubmitAttempt(ctx, quiz.ID, nil); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("submit without a token: %v", err)
	}
	if got, err := asAda.Attempt(ctx, sub.AttemptID); err != nil || got.AttemptID != sub.AttemptID || got.Score != 7 {
		t.Errorf("attempt: %+v %v", got, err)
	}
	_, bobToken, err := anon.Signup(ctx, "bob@example.com", "Bob", password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WithToken(bobToken).Attempt(ctx, sub.AttemptID); !client.IsCode(err, client.CodeNotFound) {
		t.Errorf("another student's attempt: %v", err)
	}
	other := quizzes[course.Quizzes[1].ID]
	for i := range 9 { // 10 attempts in all, on two quizzes, with nil (no answers) among them
		q, a := other, apptest.AnswersFor(other, i)
		if i == 0 {
			a = nil
		}
		if _, err := asAda.SubmitAttempt(ctx, q.ID.String(), a); err != nil {
			t.Fatal(err)
		}
	}
	all, err := asAda.AllAttempts(ctx, client.AttemptsQuery{Limit: 3})
	if err != nil || len(all) != 10 {
		t.Fatalf("all attempts, 3 a page: %d %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].SubmittedAt.After(all[i-1].SubmittedAt) || all[i].AttemptID == all[i-1].AttemptID {
			t.Errorf("attempts %d and %d out of order: %+v %+v", i-1, i, all[i-1], all[i])
		}
	}
	page, err := asAda.Attempts(ctx, client.AttemptsQuery{QuizID: quiz.ID})
	if err != nil || len(page.Attempts) != 1 || page.NextCursor != "" || page.Attempts[0].AttemptID != sub.AttemptID {
		t.Errorf("attempts of one quiz: %+v %v", page, err)
	}
	if _, err := asAda.Attempts(ctx, client.AttemptsQuery{Limit: -1}); !client.IsCode(err, client.CodeInvalidRequest) {
		t.Errorf("a negative limit: %v", err)
	}

	// Progress, once the worker stored them all.
	var progress client.Progress
	apptest.WaitFor(t, 30*time.Second, "progress to count 10 attempts", func() bool {
		progress, err = asAda.Progress(ctx)
		return err == nil && progress.Courses[0].Attempts == 10
	})
	if p := progress.Courses[0]; len(progress.Courses) != store.DefaultDemo.Courses || p.CourseID != course.ID ||
		p.QuizzesAttempted != 2 || p.QuizzesTotal != store.DefaultDemo.Quizzes || p.BestScores[quiz.ID] != 7 || p.BestScores[other.ID.String()] != 8 {
		t.Errorf("progress: %+v", progress.Courses[0])
	}
	if got, err := asAda.Attempt(ctx, sub.AttemptID); err != nil || got.Status != client.StatusRecorded {
		t.Errorf("a stored attempt: %+v %v", got, err)
	}

	// The low-level call, then logout.
	status, _, body, err := asAda.Do(ctx, http.MethodPost, "/api/v1/quizzes/"+quiz.ID+"/attempts", nil, strings.NewReader(`{"answers": [`))
	if err != nil || status != http.StatusBadRequest || !strings.Contains(string(body), client.CodeInvalidRequest) {
		t.Errorf("a malformed body: %d %s %v", status, body, err)
	}
	if err := asAda.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if _, err := asAda.User(ctx); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("user after logout: %v", err)
	}
	if err := asAda.Logout(ctx); !client.IsCode(err, client.CodeUnauthorized) {
		t.Errorf("a second logout: %v", err)
	}
	if me, err := anon.WithToken(second).User(ctx); err != nil || me.ID != ada.ID {
		t.Errorf("the other token after logout: %+v %v", me, err)
	}
}
