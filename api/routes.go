package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes is the whole HTTP surface on one screen; api/openapi.yaml
// describes it (openapi_test.go holds the two equal).
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	// The client address is the peer's, unless TrustedProxies says whose
	// X-Forwarded-For to believe.
	e.IPExtractor = ipExtractor(s.cfg.TrustedProxies)
	if log := s.accessLog(); log != nil {
		e.Use(log) // api/accesslog.go
	}
	e.Use(s.instrument, middleware.RecoverWithConfig(middleware.RecoverConfig{
		// To the API's log, not Echo's own logger on stdout.
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("api: handler panicked", "route", c.Path(), "err", err, "stack", string(stack))
			return err
		},
	}), s.deadline)

	get(e, "/livez", s.livez)
	get(e, "/readyz", s.readyz)

	v1 := e.Group("/api/v1")
	get(v1, "/openapi.yaml", serveSpec)
	// An answer with a token or a student's data is never stored by a
	// cache (noStore); the bearer routes all carry one.
	auth := s.authenticate
	v1.POST("/signup", noStore(s.signup), s.limitSignups)
	v1.POST("/login", noStore(s.login), s.limitLogins) // and per account: api/logins.go
	get(v1, "/user", noStore(s.getUser), auth)
	v1.POST("/logout", noStore(s.logout), auth)

	get(v1, "/courses", s.listCourses)
	get(v1, "/courses/:course_id", s.getCourse)
	get(v1, "/quizzes/:quiz_id", s.getQuiz)

	v1.POST("/quizzes/:quiz_id/attempts", noStore(s.submitAttempt), auth, s.limitAttempts)
	get(v1, "/attempts", noStore(s.listAttempts), auth)
	get(v1, "/attempts/:attempt_id", noStore(s.getAttempt), auth)
	get(v1, "/student-progress", noStore(s.getProgress), auth)

	x := s.newExams() // timed exams: api/sessions.go
	v1.POST("/quizzes/:quiz_id/sessions", noStore(x.start), auth, s.limitAttempts)
	get(v1, "/sessions", noStore(x.list), auth)
	get(v1, "/sessions/:session_id", noStore(x.get), auth)
	v1.PUT("/sessions/:session_id/answers/:question_id", noStore(x.save), auth, s.limitAttempts)
	v1.POST("/sessions/:session_id/submit", noStore(x.submit), auth, s.limitAttempts)

	// Code checks: exercises are content (api/exercises.go), checks an
	// event family (api/checks.go).
	get(v1, "/exercises/:exercise_id", s.getExercise)
	v1.POST("/exercises/:exercise_id/checks", noStore(s.submitCheck), auth, s.limitAttempts)
	get(v1, "/checks", noStore(s.listChecks), auth)
	get(v1, "/checks/:check_id", noStore(s.getCheck), auth)
	return e
}

// router is what get registers on: the Echo instance or a group.
type router interface {
	Add(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
}

// get registers h for GET and HEAD (RFC 9110: every GET route answers
// HEAD; net/http drops the body of a HEAD response and keeps its headers).
func get(r router, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.Add(http.MethodGet, path, h, m...)
	r.Add(http.MethodHead, path, h, m...)
}

// noStore wraps a handler whose answers carry a token or a student's data:
// no cache may keep them (RFC 9111 5.2.2.5). A handler rather than a
// middleware, because Echo builds a route's middleware anew for every
// request; it is wrapped once, here.
func noStore(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header()[echo.HeaderCacheControl] = noStoreValue
		return h(c)
	}
}

// noStoreValue is the header's value, shared by every answer: never modified.
var noStoreValue = []string{"no-store"}
