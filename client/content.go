package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ContentOption adjusts a content read (Courses, Course, Quiz).
type ContentOption func(*contentOptions)

type contentOptions struct {
	ifNoneMatch string
}

// IfNoneMatch makes a content read conditional on etag (a CacheInfo.ETag
// from an earlier read): when the content is unchanged the API answers 304
// and the read returns CacheInfo.NotModified with a zero value. An empty
// etag makes the read unconditional. It cannot fail.
func IfNoneMatch(etag string) ContentOption {
	return func(o *contentOptions) { o.ifNoneMatch = etag }
}

// Courses returns every course, in display order, and how to cache the
// answer. It returns an *Error, or the last error once retries gave up.
func (c *Client) Courses(ctx context.Context, opts ...ContentOption) ([]CourseSummary, CacheInfo, error) {
	var out struct {
		Courses []CourseSummary `json:"courses"`
	}
	info, err := c.content(ctx, "/api/v1/courses", &out, opts)
	if err != nil {
		return nil, CacheInfo{}, err
	}
	return out.Courses, info, nil
}

// Course returns one course and how to cache it. It returns an *Error with
// CodeNotFound for an unknown course, or the last error once retries gave
// up.
func (c *Client) Course(ctx context.Context, courseID string, opts ...ContentOption) (Course, CacheInfo, error) {
	var out Course
	info, err := c.content(ctx, "/api/v1/courses/"+url.PathEscape(courseID), &out, opts)
	if err != nil || info.NotModified {
		out = Course{}
	}
	return out, info, err
}

// Quiz returns one quiz (without its answers) and how to cache it. It
// returns an *Error with CodeNotFound for an unknown quiz, or the last
// error once retries gave up.
func (c *Client) Quiz(ctx context.Context, quizID string, opts ...ContentOption) (Quiz, CacheInfo, error) {
	var out Quiz
	info, err := c.content(ctx, "/api/v1/quizzes/"+url.PathEscape(quizID), &out, opts)
	if err != nil || info.NotModified {
		out = Quiz{}
	}
	return out, info, err
}

// Exercise returns one programming exercise (its shown test cases only)
// and how to cache it. It returns an *Error with CodeNotFound for an
// unknown exercise, or the last error once retries gave up.
func (c *Client) Exercise(ctx context.Context, exerciseID string, opts ...ContentOption) (Exercise, CacheInfo, error) {
	var out Exercise
	info, err := c.content(ctx, "/api/v1/exercises/"+url.PathEscape(exerciseID), &out, opts)
	if err != nil || info.NotModified {
		out = Exercise{}
	}
	return out, info, err
}

// content reads a public, cacheable resource into out.
func (c *Client) content(ctx context.Context, path string, out any, opts []ContentOption) (CacheInfo, error) {
	var o contentOptions
	for _, opt := range opts {
		opt(&o)
	}
	cl := call{method: http.MethodGet, path: path, idempotent: true}
	if o.ifNoneMatch != "" {
		cl.header = http.Header{"If-None-Match": {o.ifNoneMatch}}
	}
	rep, err := c.do(ctx, cl, out, http.StatusNotModified)
	if err != nil {
		return CacheInfo{}, err
	}
	info := CacheInfo{ETag: rep.header.Get("ETag"), MaxAge: maxAge(rep.header.Get("Cache-Control"))}
	if rep.status == http.StatusNotModified {
		info.NotModified = true
		if info.ETag == "" {
			info.ETag = o.ifNoneMatch
		}
	}
	return info, nil
}

// maxAge reads max-age from a Cache-Control header; 0 when absent or bad.
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		if s, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && s > 0 {
			return time.Duration(s) * time.Second
		}
	}
	return 0
}
