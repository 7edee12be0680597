package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/quizstream/quizstream/store"
)

// resource is a response body serialized once, with its strong ETag, and
// its gzip variant (RFC 9110 8.4) compressed once, with an ETag of its
// own: a different representation must not share the identity's ETag.
type resource struct {
	identity representation
	gzip     *representation // nil when compressing does not pay
}

// representation is one encoding of a resource: its body and the values
// of its ETag and Content-Length headers, made once so that answering
// allocates none.
type representation struct {
	body   []byte
	etag   []string
	length []string
}

func newRepresentation(body []byte, etag string) representation {
	return representation{body: body, etag: []string{etag}, length: []string{strconv.Itoa(len(body))}}
}

// minGzip is the smallest body worth compressing: below it gzip's framing
// eats the saving.
const minGzip = 512

func newResource(v any) (*resource, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	tag := base64.RawURLEncoding.EncodeToString(sum[:18])
	r := &resource{identity: newRepresentation(b, `"`+tag+`"`)}
	if len(b) >= minGzip {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(b); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if buf.Len() < len(b) {
			gz := newRepresentation(buf.Bytes(), `"`+tag+`.gz"`)
			r.gzip = &gz
		}
	}
	return r, nil
}

// quizKey is what grading needs of a quiz.
type quizKey struct {
	id       uuid.UUID
	courseID uuid.UUID
	// choices maps each question id to its choices' ids and whether each is correct.
	choices map[string]map[string]bool
	res     *resource
	// exam is a timed quiz's rules (api/sessionhelpers.go); nil when untimed.
	exam *examRules
}

// snapshot is all content, immutable once built: response bodies, ETags
// and answer keys. A new one replaces it whole.
type snapshot struct {
	courseList *resource
	courses    map[uuid.UUID]*resource
	quizzes    map[uuid.UUID]*quizKey
	exercises  map[uuid.UUID]*exerciseKey // api/exercises.go
	// order lists course ids and their quiz ids in display order, for progress.
	order []courseQuizzes
	// version changes whenever any content does.
	version string
}

type courseQuizzes struct {
	id        uuid.UUID
	quizIDs   []uuid.UUID
	exercises int
}

type choiceJSON struct {
	ID   uuid.UUID `json:"id"`
	Text string    `json:"text"`
}

type questionJSON struct {
	ID      uuid.UUID    `json:"id"`
	Prompt  string       `json:"prompt"`
	Choices []choiceJSON `json:"choices"`
}

type quizJSON struct {
	ID        uuid.UUID      `json:"id"`
	CourseID  uuid.UUID      `json:"course_id"`
	Title     string         `json:"title"`
	Questions []questionJSON `json:"questions"`
	*timedJSON
}

type courseSummaryJSON struct {
	ID      uuid.UUID   `json:"id"`
	Slug    string      `json:"slug"`
	Title   string      `json:"title"`
	QuizIDs []uuid.UUID `json:"quiz_ids"`
}

type courseQuizJSON struct {
	ID            uuid.UUID `json:"id"`
	Title         string    `json:"title"`
	QuestionCount int       `json:"question_count"`
	*timedJSON
}

type courseJSON struct {
	courseSummaryJSON
	Description string               `json:"description"`
	Quizzes     []courseQuizJSON     `json:"quizzes"`
	Exercises   []courseExerciseJSON `json:"exercises"`
}

// buildSnapshot serializes all content once; it fails only if a body does
// not encode.
func buildSnapshot(courses []store.Course) (*snapshot, error) {
	snap := &snapshot{courses: map[uuid.UUID]*resource{}, quizzes: map[uuid.UUID]*quizKey{}, exercises: map[uuid.UUID]*exerciseKey{}}
	summaries := make([]courseSummaryJSON, 0, len(courses))
	version := sha256.New()
	for _, c := range courses {
		sum := courseSummaryJSON{ID: c.ID, Slug: c.Slug, Title: c.Title, QuizIDs: []uuid.UUID{}}
		full := courseJSON{Description: c.Description, Quizzes: []courseQuizJSON{}}
		for _, q := range c.Quizzes {
			sum.QuizIDs = append(sum.QuizIDs, q.ID)
			key := &quizKey{id: q.ID, courseID: c.ID, choices: map[string]map[string]bool{}, exam: newExamRules(q)}
			full.Quizzes = append(full.Quizzes, courseQuizJSON{ID: q.ID, Title: q.Title, QuestionCount: len(q.Questions), timedJSON: key.exam.timing()})
			body := quizJSON{ID: q.ID, CourseID: c.ID, Title: q.Title, Questions: []questionJSON{}, timedJSON: key.exam.timing()}
			for _, qu := range q.Questions {
				qj := questionJSON{ID: qu.ID, Prompt: qu.Prompt, Choices: []choiceJSON{}}
				key.choices[qu.ID.String()] = map[string]bool{}
				for _, ch := range qu.Choices {
					qj.Choices = append(qj.Choices, choiceJSON{ID: ch.ID, Text: ch.Text})
					key.choices[qu.ID.String()][ch.ID.String()] = ch.Correct
					fmt.Fprintf(version, "%s %t\n", ch.ID, ch.Correct)
				}
				body.Questions = append(body.Questions, qj)
			}
			var err error
			if key.res, err = newResource(body); err != nil {
				return nil, fmt.Errorf("encode quiz %s: %w", q.ID, err)
			}
			version.Write(key.res.identity.body)
			key.exam.hash(version) // what the body does not show
			snap.quizzes[q.ID] = key
		}
		var err error
		if full.Exercises, err = snap.addExercises(c, version); err != nil {
			return nil, err
		}
		full.courseSummaryJSON = sum
		res, err := newResource(full)
		if err != nil {
			return nil, fmt.Errorf("encode course %s: %w", c.ID, err)
		}
		snap.courses[c.ID] = res
		snap.order = append(snap.order, courseQuizzes{id: c.ID, quizIDs: sum.QuizIDs, exercises: len(c.Exercises)})
		summaries = append(summaries, sum)
	}
	var err error
	if snap.courseList, err = newResource(map[string]any{"courses": summaries}); err != nil {
		return nil, fmt.Errorf("encode course list: %w", err)
	}
	version.Write(snap.courseList.identity.body)
	snap.version = base64.RawURLEncoding.EncodeToString(version.Sum(nil))
	return snap, nil
}

// loadContent reads all content from the store and swaps in a new snapshot
// when it changed. It reports whether it did.
//
// An instance with no snapshot yet whose PostgreSQL is unreachable loads
// the copy kept in NATS instead (Config.ContentCopy), so that it starts, serves
// content and grades attempts through a database outage; the periodic
// reload replaces it from PostgreSQL once the database answers. A snapshot
// loaded from PostgreSQL is saved as that copy when it is new.
func (s *Server) loadContent(ctx context.Context) (bool, error) {
	courses, err := s.store.LoadContent(ctx)
	from := "postgres"
	if err != nil {
		cc := s.cfg.ContentCopy
		if cc == nil || s.content.Load() != nil || !errors.Is(err, store.ErrUnavailable) {
			return false, err
		}
		var cerr error
		if courses, cerr = loadContentCopy(ctx, cc); cerr != nil {
			return false, fmt.Errorf("%w; and its copy in NATS: %w", err, cerr)
		}
		from = "nats"
		s.log.Warn("api: PostgreSQL unreachable; content loaded from its copy in NATS", "err", err)
	}
	snap, err := buildSnapshot(courses)
	if err != nil {
		return false, err
	}
	if old := s.content.Load(); old != nil && old.version == snap.version {
		return false, nil
	}
	s.content.Store(snap)
	s.log.Info("api: content snapshot loaded", "from", from, "courses", len(snap.order), "quizzes", len(snap.quizzes), "version", snap.version[:12])
	if cc := s.cfg.ContentCopy; cc != nil && from == "postgres" {
		saveContentCopy(ctx, cc, courses, s.log)
	}
	return true, nil
}

func loadContentCopy(ctx context.Context, cc ContentCopy) ([]store.Course, error) {
	data, _, err := cc.Load(ctx)
	if err != nil {
		return nil, err
	}
	return store.DecodeContent(data)
}

// saveContentCopy saves courses as the content copy; a failure is logged
// only, since the copy matters only to an instance starting without
// PostgreSQL.
func saveContentCopy(ctx context.Context, cc ContentCopy, courses []store.Course, log *slog.Logger) {
	data, err := store.EncodeContent(courses)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = cc.Save(ctx, data)
	}
	if err != nil && ctx.Err() == nil {
		log.Warn("api: content copy in NATS not saved; an instance starting while PostgreSQL is down cannot serve", "err", err)
	}
}

// reloadContent reloads the snapshot when a content-changed notice asks,
// and every ContentReload as a safety net, until ctx ends.
func (s *Server) reloadContent(ctx context.Context) {
	var tick <-chan time.Time
	if s.cfg.ContentReload > 0 {
		t := time.NewTicker(s.cfg.ContentReload)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-s.reload:
		}
		if _, err := s.loadContent(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("api: content reload failed; serving the previous snapshot", "err", err)
		}
	}
}

// Header values every content answer shares; never modified.
var (
	varyAcceptEncoding = []string{"Accept-Encoding"}
	gzipEncoding       = []string{"gzip"}
)

// serveResource answers with a precomputed body, gzipped when the client
// accepts it and that pays, or 304 when the client already holds the
// representation it would get.
func (s *Server) serveResource(c echo.Context, r *resource) error {
	h := c.Response().Header()
	rep := &r.identity
	if r.gzip != nil && acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
		rep = r.gzip
	}
	// Caches key the variants apart (RFC 9110 12.5.5).
	h[echo.HeaderVary] = varyAcceptEncoding
	h["Etag"] = rep.etag // as Header.Set would key it
	h[echo.HeaderCacheControl] = s.cacheControl
	if etagMatches(c.Request().Header.Get("If-None-Match"), rep.etag[0]) {
		return c.NoContent(http.StatusNotModified)
	}
	if rep != &r.identity {
		h[echo.HeaderContentEncoding] = gzipEncoding
	}
	h[echo.HeaderContentLength] = rep.length
	return writeJSON(c, http.StatusOK, rep.body)
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip
// (RFC 9110 12.5.3): named, or covered by "*", with a q above zero.
func acceptsGzip(header string) bool {
	if header == "" {
		return false
	}
	gzip, star := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			gzip = q
		case "*":
			star = q
		}
	}
	if gzip >= 0 {
		return gzip > 0
	}
	return star > 0
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

func (s *Server) listCourses(c echo.Context) error {
	return s.serveResource(c, s.content.Load().courseList)
}

func (s *Server) getCourse(c echo.Context) error {
	id, err := uuid.Parse(c.Param("course_id"))
	if err != nil {
		return notFound("course")
	}
	r, ok := s.content.Load().courses[id]
	if !ok {
		return notFound("course")
	}
	return s.serveResource(c, r)
}

func (s *Server) getQuiz(c echo.Context) error {
	id, err := uuid.Parse(c.Param("quiz_id"))
	if err != nil {
		return notFound("quiz")
	}
	q, ok := s.content.Load().quizzes[id]
	if !ok {
		return notFound("quiz")
	}
	return s.serveResource(c, q.res)
}

func cacheControl(maxAge time.Duration) []string {
	return []string{"public, max-age=" + strconv.Itoa(int(maxAge.Seconds()))}
}
