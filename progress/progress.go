// Package progress shows how far a long operator command has come: a bar on
// a terminal, a log line at intervals otherwise (a job's log).
package progress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Meter shows a long operation's progress: a bar when out is a terminal, a
// log line every Interval otherwise. It starts with the first Update, and
// Stop ends it.
type Meter struct {
	// Interval is how often progress is logged when out is not a terminal.
	// Defaults to 5s; set it before the first Update.
	Interval time.Duration

	out  io.Writer
	log  *slog.Logger
	desc string
	unit string

	started        bool
	start          time.Time
	read, estimate atomic.Uint64
	bar            *progressbar.ProgressBar
	cancel         context.CancelFunc
	wg             sync.WaitGroup
}

// New returns a Meter that describes the operation as desc and counts unit
// ("events"); it shows nothing before the first Update.
func New(out io.Writer, log *slog.Logger, desc, unit string) *Meter {
	return &Meter{Interval: 5 * time.Second, out: out, log: log, desc: desc, unit: unit}
}

// Update reports done of an estimated total; call it from one goroutine.
func (m *Meter) Update(done, total uint64) {
	m.read.Store(done)
	m.estimate.Store(total)
	if !m.started {
		m.started = true
		m.begin(total)
	}
	if m.bar != nil {
		_ = m.bar.Set64(int64(done))
	}
}

func (m *Meter) begin(estimate uint64) {
	m.start = time.Now()
	if isTerminal(m.out) {
		max := int64(estimate)
		if max == 0 {
			max = -1 // a spinner
		}
		m.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(m.out),
			progressbar.OptionSetDescription(m.desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(m.unit),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(m.out) }),
		)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(m.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.logProgress()
			}
		}
	}()
}

func (m *Meter) logProgress() {
	read, estimate := m.read.Load(), m.estimate.Load()
	elapsed := time.Since(m.start)
	per := float64(read) / elapsed.Seconds()
	attrs := []any{"read", read, "estimate", estimate, "rate_per_s", int64(per), "elapsed", elapsed.Round(time.Second)}
	if per > 0 && read < estimate {
		eta := time.Duration(float64(estimate-read) / per * float64(time.Second))
		attrs = append(attrs, "eta", eta.Round(time.Second))
	}
	m.log.Info(m.desc+": progress", attrs...)
}

// Stop finishes the bar, or stops the logging and waits for it.
func (m *Meter) Stop() {
	switch {
	case m.bar != nil:
		m.bar.ChangeMax64(max(int64(m.read.Load()), 1))
		_ = m.bar.Finish()
	case m.cancel != nil:
		m.cancel()
		m.wg.Wait()
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
