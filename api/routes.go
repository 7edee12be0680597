package api

import (
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

	e.GET("/livez", s.livez)
	e.GET("/readyz", s.readyz)

	v1 := e.Group("/api/v1")
	auth := s.authenticate
	v1.POST("/signup", s.signup)
	v1.POST("/login", s.login)
	v1.GET("/user", s.getUser, auth)
	v1.POST("/logout", s.logout, auth)

	v1.GET("/courses", s.listCourses)
	v1.GET("/courses/:course_id", s.getCourse)
	v1.GET("/quizzes/:quiz_id", s.getQuiz)

	v1.POST("/quizzes/:quiz_id/attempts", s.submitAttempt, auth)
	v1.GET("/attempts", s.listAttempts, auth)
	v1.GET("/attempts/:attempt_id", s.getAttempt, auth)
	v1.GET("/student-progress", s.getProgress, auth)
	return e
}
