package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/store/storetest"
)

// openPTY returns the two ends of a new pseudo-terminal, closed when t
// ends. The controlling end is non-blocking, so that closing it ends a
// read in progress.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	fd, err := syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var unlock int32
	//nolint:gosec // G103: the ioctl writes through a pointer to its argument
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		syscall.Close(fd)
		t.Fatalf("unlock the pseudo-terminal: %v", errno)
	}
	var n uint32
	//nolint:gosec // G103: the ioctl writes through a pointer to its argument
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		syscall.Close(fd)
		t.Fatalf("pseudo-terminal number: %v", errno)
	}
	ptm = os.NewFile(uintptr(fd), "/dev/ptmx") // pollable: fd is non-blocking
	t.Cleanup(func() { ptm.Close() })
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

// lockedBuffer is a buffer one goroutine writes while another reads.
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

// `make run` at a terminal, stopped with ctrl-C, exits 0: the terminal
// sends SIGINT to its foreground process group, and GNU make ends by a
// SIGINT it receives (status 130) unless its recipe keeps dev a job of
// its own. It runs the Makefile as a user does (building bin/quizstream),
// with dev's addresses, data and database its own.
func TestMakeRunCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bin/quizstream and runs dev")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	t.Parallel()
	ptm, pts := openPTY(t)
	_, natsPort, err := net.SplitHostPort(apptest.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "run")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+storetest.NewDatabase(t),
		"LISTEN_ADDR="+apptest.FreeAddr(t),
		"METRICS_ADDR=off",
		"NATS_PORT="+natsPort,
		"DATA_DIR="+filepath.Join(t.TempDir(), "dev"),
		"LOG_LEVEL=error")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	// A session of its own whose controlling terminal is pts, as a shell
	// at a terminal starts make.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&out, ptm) // ends with an error once ptm closes
	}()
	t.Cleanup(func() { ptm.Close(); <-copied })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// On a failure: make's process group dies, and dev, a job of its own,
	// gets the SIGHUP a terminal's foreground group gets when its session
	// leader (make) ends.
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }() // gone already when the test passes
	apptest.WaitFor(t, 3*time.Minute, "make run's API", func() bool {
		return strings.Contains(out.String(), "quizstream API listening on")
	})
	if _, err := ptm.Write([]byte{0x03}); err != nil { // ctrl-C, as typed
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("make run after ctrl-C: %v; want exit 0\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("make run did not end within a minute of ctrl-C\n%s", out.String())
	}
}
