package progress_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/progress"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Off a terminal, progress is logged at intervals with the count and the
// estimate, and Stop ends the logging.
func TestMeterLogsOffATerminal(t *testing.T) {
	var logs lockedBuffer
	var out bytes.Buffer
	m := progress.New(&out, slog.New(slog.NewTextHandler(&logs, nil)), "replay restore", "events")
	m.Interval = 5 * time.Millisecond
	m.Update(0, 100)
	m.Update(40, 100)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "read=40") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line: %q", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.Stop()
	if !strings.Contains(logs.String(), `msg="replay restore: progress"`) || !strings.Contains(logs.String(), "estimate=100") {
		t.Fatalf("progress line: %q", logs.String())
	}
	if out.Len() != 0 {
		t.Fatalf("a bar was drawn on a non-terminal: %q", out.String())
	}
	n := strings.Count(logs.String(), "\n")
	time.Sleep(20 * time.Millisecond)
	if strings.Count(logs.String(), "\n") != n {
		t.Fatal("logging went on after Stop")
	}
}
