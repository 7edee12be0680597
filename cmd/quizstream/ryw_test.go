package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/worker"
)

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// spawnAPI starts `quizstream api` as its own process and waits until it is ready.
func (s *stack) spawnAPI(t testing.TB, env ...string) string {
	t.Helper()
	addr := freeAddr(t)
	s.spawn(t, "api", append([]string{"LISTEN_ADDR=" + addr}, env...)...)
	base := "http://" + addr
	waitFor(t, 30*time.Second, "the api process to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

type attemptList struct {
	Attempts   []attemptBody `json:"attempts"`
	NextCursor *string       `json:"next_cursor"`
}

// A student who got a 202 from one API instance sees the attempt at once
// through another instance (a separate process), while no worker runs:
// status accepted, read from the stream; recorded once a worker stored it.
func TestReadYourWritesAcrossInstances(t *testing.T) {
	t.Parallel()
	s := newStack(t, events.StreamConfig{})
	writer := s.startAPI(t, api.Config{})
	reader := s.spawnAPI(t)

	alice := signup(t, writer.URL, "alice-ryw@example.com")
	var sent []attemptBody
	for i, q := range []int{0, 1, 0} {
		status, body, err := alice.submit(s.Quizzes[q].ID.String(), fmt.Sprintf("ryw-%d", i), answersFor(s.Quizzes[q], i+2))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("submit %d: %d %v", i, status, err)
		}
		sent = append(sent, body)
	}
	writer.stop() // the writing instance is gone before the other reads

	bob := signup(t, reader, "bob-ryw@example.com") // someone else sees none of it
	alice.base = reader

	check := func(status string) {
		t.Helper()
		var list attemptList
		if code := doJSON(t, alice, "GET", "/api/v1/attempts", nil, nil, &list); code != http.StatusOK {
			t.Fatalf("list: %d", code)
		}
		if len(list.Attempts) != len(sent) || list.NextCursor != nil {
			t.Fatalf("list has %d attempts (next %v), want %d", len(list.Attempts), list.NextCursor, len(sent))
		}
		for i, got := range list.Attempts {
			want := sent[len(sent)-1-i] // newest first
			want.Status = status
			if got != want {
				t.Fatalf("list[%d] = %+v, want %+v", i, got, want)
			}
			var one attemptBody
			if code := doJSON(t, alice, "GET", "/api/v1/attempts/"+want.AttemptID, nil, nil, &one); code != http.StatusOK || one != want {
				t.Fatalf("get %s: %d %+v, want %+v", want.AttemptID, code, one, want)
			}
			if code := doJSON(t, bob, "GET", "/api/v1/attempts/"+want.AttemptID, nil, nil, nil); code != http.StatusNotFound {
				t.Fatalf("another student reading it: %d, want 404", code)
			}
		}
		var page attemptList
		doJSON(t, alice, "GET", "/api/v1/attempts?limit=1&quiz_id="+s.Quizzes[0].ID.String(), nil, nil, &page)
		if len(page.Attempts) != 1 || page.Attempts[0].AttemptID != sent[2].AttemptID || page.NextCursor == nil {
			t.Fatalf("first page of quiz 0: %+v", page)
		}
		doJSON(t, alice, "GET", "/api/v1/attempts?limit=1&quiz_id="+s.Quizzes[0].ID.String()+"&cursor="+url.QueryEscape(*page.NextCursor), nil, nil, &page)
		if len(page.Attempts) != 1 || page.Attempts[0].AttemptID != sent[0].AttemptID {
			t.Fatalf("second page of quiz 0: %+v", page)
		}
		var none attemptList
		doJSON(t, bob, "GET", "/api/v1/attempts", nil, nil, &none)
		if len(none.Attempts) != 0 {
			t.Fatalf("bob sees %d attempts", len(none.Attempts))
		}
	}
	check("accepted")
	if n := s.countAttempts(t); n != 0 {
		t.Fatalf("%d attempts stored with no worker running", n)
	}

	stop := s.startWorker(t, worker.Config{})
	s.waitDrained(t, 20*time.Second)
	stop()
	check("recorded")

	// Stored and not yet stored attempts merge into one order.
	status, fourth, err := alice.submit(s.Quizzes[2].ID.String(), "ryw-3", answersFor(s.Quizzes[2], 9))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("fourth submit: %d %v", status, err)
	}
	var list attemptList
	doJSON(t, alice, "GET", "/api/v1/attempts?limit=2", nil, nil, &list)
	if len(list.Attempts) != 2 || list.Attempts[0] != fourth || list.Attempts[1].AttemptID != sent[2].AttemptID ||
		list.Attempts[1].Status != "recorded" || list.NextCursor == nil {
		t.Fatalf("mixed page: %+v", list)
	}
}
