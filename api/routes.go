package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes is the whole HTTP surface on one screen.
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	// Trust no X-Forwarded-For by default: the client address is the peer's.
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(s.instrument, middleware.Recover())

	get(e, "/livez", s.livez)
	get(e, "/readyz", s.readyz)

	v1 := e.Group("/api/v1")
	auth := s.authenticate
	v1.POST("/signup", s.signup)
	v1.POST("/login", s.login)
	get(v1, "/user", s.getUser, auth)
	v1.POST("/logout", s.logout, auth)

	get(v1, "/courses", s.listCourses)
	get(v1, "/courses/:course_id", s.getCourse)
	get(v1, "/quizzes/:quiz_id", s.getQuiz)

	v1.POST("/quizzes/:quiz_id/attempts", s.submitAttempt, auth)
	get(v1, "/attempts", s.listAttempts, auth)
	get(v1, "/attempts/:attempt_id", s.getAttempt, auth)
	get(v1, "/student-progress", s.getProgress, auth)
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
