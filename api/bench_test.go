package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/tail"
)

// benchStack is a Server on a real PostgreSQL database and a real JetStream
// server, driven through its whole Echo handler stack (routing,
// middleware, authentication, encoding) without a network in between.
type benchStack struct {
	ns      *server.Server
	st      *store.Store
	log     *eventlog.Log
	srv     http.Handler
	token   string
	student uuid.UUID
	quiz    store.Quiz
	etag    string
}

func newBenchStack(b *testing.B) *benchStack {
	b.Helper()
	st, _ := storetest.Open(b)
	ns := eventstest.NewServer(b)
	_, js := eventstest.Connect(b, ns)
	lg, err := eventlog.NewLog(b.Context(), js, streams.StreamConfig{})
	if err != nil {
		b.Fatal(err)
	}
	// One student submits far above a person's pace: no per-student limits.
	srv, err := api.NewServer(b.Context(), api.Config{
		Store: st, Events: lg, Logger: slog.New(slog.DiscardHandler), ContentReload: -1,
		AttemptRate: -1, MaxUnsettledPerStudent: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	bs := &benchStack{ns: ns, st: st, log: lg, srv: srv.Handler(), quiz: store.DemoContent(store.DefaultDemo)[0].Quizzes[0]}
	var signup struct {
		Student struct {
			ID uuid.UUID `json:"id"`
		} `json:"student"`
		Token string `json:"token"`
	}
	rec := bs.do(b, "POST", "/api/v1/signup", `{"email":"bench@example.com","name":"Bench","password":"bench password"}`, nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &signup); err != nil || rec.Code != http.StatusCreated {
		b.Fatalf("signup: %d %s", rec.Code, rec.Body)
	}
	bs.token, bs.student = signup.Token, signup.Student.ID
	bs.etag = bs.do(b, "GET", "/api/v1/quizzes/"+bs.quiz.ID.String(), "", nil).Header().Get("ETag")

	// 200 stored attempts over 10 quizzes, for the student reads.
	var batch []store.Attempt
	quizzes := store.DemoContent(store.DefaultDemo)[0].Quizzes
	for i := range 200 {
		q := quizzes[i%len(quizzes)]
		batch = append(batch, store.Attempt{
			ID: uuid.New(), StudentID: bs.student, QuizID: q.ID, CourseID: q.CourseID,
			Answers: []byte("[]"), AnswersHash: make([]byte, 32), Score: i % 11, MaxScore: 10,
			SubmittedAt: time.Now().Add(-time.Duration(i) * time.Second).UTC(), StreamSeq: uint64(i + 1),
		})
	}
	if _, err := st.InsertAttempts(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	return bs
}

// useEvents serves bs's database with another event log, keeping its token.
func (bs *benchStack) useEvents(b *testing.B, ev api.EventLog) {
	b.Helper()
	srv, err := api.NewServer(b.Context(), api.Config{
		Store: bs.st, Events: ev, Logger: slog.New(slog.DiscardHandler), ContentReload: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	bs.srv = srv.Handler()
}

func (bs *benchStack) do(b *testing.B, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bs.token != "" {
		req.Header.Set("Authorization", "Bearer "+bs.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	bs.srv.ServeHTTP(rec, req)
	return rec
}

func (bs *benchStack) run(b *testing.B, method, path, body string, header map[string]string, want int) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if rec := bs.do(b, method, path, body, header); rec.Code != want {
			b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
}

func BenchmarkReads(b *testing.B) {
	bs := newBenchStack(b)
	quiz := "/api/v1/quizzes/" + bs.quiz.ID.String()
	b.Run("quiz", func(b *testing.B) { bs.run(b, "GET", quiz, "", nil, http.StatusOK) })
	b.Run("quiz_not_modified", func(b *testing.B) {
		bs.run(b, "GET", quiz, "", map[string]string{"If-None-Match": bs.etag}, http.StatusNotModified)
	})
	b.Run("courses", func(b *testing.B) { bs.run(b, "GET", "/api/v1/courses", "", nil, http.StatusOK) })
	b.Run("user", func(b *testing.B) { bs.run(b, "GET", "/api/v1/user", "", nil, http.StatusOK) })
	b.Run("progress", func(b *testing.B) { bs.run(b, "GET", "/api/v1/student-progress", "", nil, http.StatusOK) })
	b.Run("attempts_page", func(b *testing.B) { bs.run(b, "GET", "/api/v1/attempts?limit=20", "", nil, http.StatusOK) })
}

// BenchmarkSubmitAttempt measures the write path up to the PubAck of a
// server that fsyncs every write (sync always, R1).
func BenchmarkSubmitAttempt(b *testing.B) {
	bs := newBenchStack(b)
	var answers []events.Answer
	for _, q := range bs.quiz.Questions {
		answers = append(answers, events.Answer{QuestionID: q.ID.String(), ChoiceID: q.Choices[0].ID.String()})
	}
	body, _ := json.Marshal(map[string]any{"answers": answers})
	path := "/api/v1/quizzes/" + bs.quiz.ID.String() + "/attempts"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		rec := bs.do(b, "POST", path, string(body), map[string]string{"Idempotency-Key": fmt.Sprint("bench-", i)})
		if rec.Code != http.StatusAccepted {
			b.Fatalf("submit: %d %s", rec.Code, rec.Body)
		}
	}
}

// tailLog is the wiring's event log: publishes through the Log, student
// reads from a Tail.
type tailLog struct {
	*eventlog.Log
	*tail.Tail
}

func (l tailLog) AckFloor(ctx context.Context) (uint64, error) { return l.Tail.AckFloor(ctx) }
func (l tailLog) Ping(ctx context.Context) error               { return l.Tail.Ping(ctx) }
func (l tailLog) Attempt(ctx context.Context, s, a uuid.UUID) (eventlog.Published, error) {
	return l.Tail.Attempt(ctx, s, a)
}
func (l tailLog) CountStudentAttempts(ctx context.Context, s uuid.UUID, after uint64, max int) (int, error) {
	return l.Tail.CountStudentAttempts(ctx, s, after, max)
}
func (l tailLog) StudentAttempts(ctx context.Context, s uuid.UUID, after uint64, max int) ([]eventlog.Published, error) {
	return l.Tail.StudentAttempts(ctx, s, after, max)
}

// BenchmarkAttemptsPageConcurrent compares the attempts page with its
// unsettled attempts read from the stream on every request (log) and
// answered by the instance's tail (tail), 16 readers at once, everything
// else shared.
func BenchmarkAttemptsPageConcurrent(b *testing.B) {
	for _, mode := range []string{"log", "tail"} {
		b.Run(mode, func(b *testing.B) {
			bs := newBenchStack(b)
			if mode == "tail" {
				lg := bs.log
				tail, err := tail.NewTail(b.Context(), lg, tail.TailConfig{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(tail.Close)
				bs.useEvents(b, tailLog{Log: lg, Tail: tail})
			}
			b.SetParallelism(8) // 16 readers on 2 cores
			b.ReportAllocs()
			before := jsAPIRequests(b, bs.ns)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if rec := bs.do(b, "GET", "/api/v1/attempts?limit=20", "", nil); rec.Code != http.StatusOK {
						b.Errorf("attempts page: %d %s", rec.Code, rec.Body)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(jsAPIRequests(b, bs.ns)-before)/float64(b.N), "jsapi/op")
		})
	}
}

// jsAPIRequests is how many JetStream API requests ns has served.
func jsAPIRequests(b *testing.B, ns *server.Server) uint64 {
	info, err := ns.Jsz(nil)
	if err != nil {
		b.Fatal(err)
	}
	return info.JetStreamStats.API.Total
}
