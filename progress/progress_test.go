package progress_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/quizstream/quizstream/progress"
)

// records keeps the log records a Meter writes, so that the test reads
// their values rather than their printed text.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}

func (r *records) all() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slog.Record(nil), r.list...)
}

// attrs returns a record's attributes by key, resolved.
func attrs(rec slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Resolve()
		return true
	})
	return m
}

// Off a terminal, progress is logged at intervals with the count and the
// estimate, and Stop ends the logging.
func TestMeterLogsOffATerminal(t *testing.T) {
	logs := &records{}
	var out bytes.Buffer
	m := progress.New(&out, slog.New(logs), "replay restore", "events")
	m.Interval = 5 * time.Millisecond
	m.Update(0, 100)
	m.Update(40, 100)
	deadline := time.Now().Add(5 * time.Second)
	// progressAt returns the first record that counted read events.
	progressAt := func(read uint64) (slog.Record, bool) {
		for _, rec := range logs.all() {
			if a := attrs(rec); a["read"].Kind() == slog.KindUint64 && a["read"].Uint64() == read {
				return rec, true
			}
		}
		return slog.Record{}, false
	}
	line, ok := progressAt(40)
	for ; !ok; line, ok = progressAt(40) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress record with read=40 among %d records", len(logs.all()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.Stop()
	if a := attrs(line); line.Message != "replay restore: progress" || a["estimate"].Kind() != slog.KindUint64 || a["estimate"].Uint64() != 100 {
		t.Fatalf("progress record: %q %v", line.Message, a)
	}
	if out.Len() != 0 {
		t.Fatalf("a bar was drawn on a non-terminal: %q", out.String())
	}
	n := len(logs.all())
	time.Sleep(20 * time.Millisecond)
	if len(logs.all()) != n {
		t.Fatal("logging went on after Stop")
	}
}
