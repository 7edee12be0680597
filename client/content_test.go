package client_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/quizstream/quizstream/client"
)

func TestContentETag(t *testing.T) {
	t.Parallel()
	srv, f := newFake(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "public, max-age=60")
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": "c1", "slug": "s", "title": "T", "quiz_ids": []string{"q1"},
			"description": "D", "quizzes": []map[string]any{{"id": "q1", "title": "Q", "question_count": 10}}})
	})
	c := newClient(t, srv.URL, client.Options{})
	course, info, err := c.Course(t.Context(), "c1")
	if err != nil || info != (client.CacheInfo{ETag: `"v1"`, MaxAge: time.Minute}) || course.Quizzes[0].QuestionCount != 10 || course.Description != "D" {
		t.Fatalf("course: %+v %+v %v", course, info, err)
	}
	course, again, err := c.Course(t.Context(), "c1", client.IfNoneMatch(info.ETag))
	if err != nil || !again.NotModified || again.ETag != `"v1"` || course.ID != "" {
		t.Fatalf("conditional read: %+v %+v %v", course, again, err)
	}
	if hits := f.all(); len(hits) != 2 || hits[0].header.Get("If-None-Match") != "" || hits[1].header.Get("If-None-Match") != `"v1"` {
		t.Errorf("requests: %+v", hits)
	}
}
