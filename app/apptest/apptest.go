// Package apptest gives tests a private quizstream installation, a real
// PostgreSQL database and a real JetStream server, and runs quizstream on
// it through the same wiring as the binary: in this process (app.New and
// Run) or as separate processes of the quizstream binary itself.
package apptest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/client"
	"github.com/quizstream/quizstream/eventlog"
	"github.com/quizstream/quizstream/events/eventstest"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// Stack is one test's installation: its own database (migrated, demo
// content seeded) and its own JetStream server, with the streams, the
// consumer and the content bucket applied, and the exams family's
// streams and consumers (streams.Apply of every declared family).
// Its Store, DB and Log are the test's own, for arranging and checking;
// every quizstream instance opens its own connections, as in production.
type Stack struct {
	DBURL   string
	Store   *store.Store
	DB      *pgxpool.Pool
	NATS    *server.Server // nil when the stack uses an outside NATS (NewOn)
	NATSURL string
	NC      *nats.Conn
	JS      jetstream.JetStream
	Stream  streams.StreamConfig
	Log     *eventlog.Log
	Quizzes []store.Quiz // the demo's untimed quizzes, with their answer keys
}

// New returns a Stack with a private database and JetStream server; it
// fails t when either cannot be had.
func New(t testing.TB, stream streams.StreamConfig) *Stack {
	t.Helper()
	ns := eventstest.NewServer(t)
	s := NewOn(t, ns.ClientURL(), stream)
	s.NATS = ns
	return s
}

// NewOn returns a Stack with a private database on the NATS server (or
// cluster) at natsURL, waiting up to 30s for JetStream to take the stream.
func NewOn(t testing.TB, natsURL string, stream streams.StreamConfig) *Stack {
	t.Helper()
	st, dbURL := storetest.Open(t)
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("apptest: connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The read model on, as the binary's default: tests hold it to its
	// promises.
	stream.ReadModel = true
	if err := stream.Validate(); err != nil {
		t.Fatal(err)
	}
	var lg *eventlog.Log
	WaitFor(t, 30*time.Second, "JetStream to take the stream", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		// Every family, as `quizstream stream apply` does.
		if _, err = streams.Apply(ctx, js, true, streams.Declared(stream, streams.ExamStreamConfig{}, streams.CheckStreamConfig{})...); err != nil {
			return false
		}
		lg, err = eventlog.OpenLog(ctx, js, stream)
		return err == nil
	})
	// Instances run with the read model (Config): an event is settled once
	// the model's consumer folded it too, as their own Logs say.
	lg.SettledAlsoBy(streams.ReadModelConsumer)
	s := &Stack{DBURL: dbURL, Store: st, DB: storetest.DB(t, dbURL), NATSURL: natsURL, NC: nc, JS: js, Stream: stream, Log: lg}
	for _, c := range store.DemoContent(store.DefaultDemo) {
		for _, q := range c.Quizzes {
			if q.TimeLimit == 0 { // a timed quiz takes sessions, not attempt POSTs
				s.Quizzes = append(s.Quizzes, q)
			}
		}
	}
	return s
}

// WithDatabase returns a copy of s whose instances reach PostgreSQL at
// dbURL (a proxy, say); the test's own Store and DB are unchanged.
func (s *Stack) WithDatabase(dbURL string) *Stack {
	c := *s
	c.DBURL = dbURL
	return &c
}

// Config is the wiring of an instance on this stack: no API, no workers,
// no operations listener, a free port, content reload off, and the
// stream's settings applied by the instance itself (as `quizstream dev`
// does; a test of an instance that only checks them unsets ApplyStream).
func (s *Stack) Config(t testing.TB) app.Config {
	return app.Config{
		DatabaseURL: s.DBURL, NATSURL: s.NATSURL, Stream: s.Stream, ApplyStream: true,
		ListenAddr: "127.0.0.1:0", APIConfig: api.Config{ContentReload: -1},
		Logger: Logger(t), Dev: true,
	}
}

// Instance is quizstream running in this test process.
type Instance struct {
	*app.App
	URL    string
	cancel context.CancelFunc
	done   chan error
	ended  chan struct{} // closed when Run returned; err is then its result
	err    error
	once   sync.Once
	t      testing.TB
}

// Start runs cfg through app.New and Run in this process until Stop or
// the end of t.
func (s *Stack) Start(t testing.TB, cfg app.Config) *Instance {
	t.Helper()
	a, err := app.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("apptest: start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Instance{App: a, URL: a.URL(), cancel: cancel, done: make(chan error, 1), ended: make(chan struct{}), t: t}
	if cfg.API {
		watch(t, in.URL) // api/openapi.yaml holds its answers (openapi.go)
	}
	go func() {
		in.err = a.Run(ctx)
		close(in.ended) // for Stop, even when the test took the result from Done
		in.done <- in.err
	}()
	t.Cleanup(in.Stop)
	return in
}

// StartAPI runs an API instance with cfg's settings (the wiring fills the
// rest).
func (s *Stack) StartAPI(t testing.TB, cfg api.Config) *Instance {
	t.Helper()
	c := s.Config(t)
	c.API = true
	if cfg.ContentReload == 0 {
		cfg.ContentReload = -1
	}
	c.APIConfig = cfg
	return s.Start(t, c)
}

// StartWorker runs one worker with cfg's settings.
func (s *Stack) StartWorker(t testing.TB, cfg worker.Config) *Instance {
	t.Helper()
	c := s.Config(t)
	c.Workers, c.WorkerConfig = 1, cfg
	return s.Start(t, c)
}

// Cancel asks the instance to stop and returns at once; Done reports Run's
// result.
func (in *Instance) Cancel() { in.cancel() }

// Done delivers Run's result once it returned.
func (in *Instance) Done() <-chan error { return in.done }

// Stop cancels the instance and waits for Run to return, failing the test
// on an error; it is safe to call twice, and after Cancel and Done.
func (in *Instance) Stop() {
	in.once.Do(func() {
		in.cancel()
		select {
		case <-in.ended:
			if in.err != nil {
				in.t.Errorf("apptest: instance: %v", in.err)
			}
		case <-time.After(time.Minute):
			in.t.Errorf("apptest: instance did not stop within a minute")
		}
	})
}

// Logger returns a logger that writes warnings and errors into t's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Writer writes into t's log, a line at a time.
type Writer struct{ T testing.TB }

func (w Writer) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the quizstream binary, built once per test
// process from this module's cmd/quizstream.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "quizstream-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "quizstream")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/quizstream/quizstream/cmd/quizstream").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("apptest: %v", binErr)
	}
	return binPath
}

// Env is what every process of the stack is started with, before the
// caller's own variables (which win).
func (s *Stack) Env() []string {
	return []string{
		"DATABASE_URL=" + s.DBURL,
		"NATS_URL=" + s.NATSURL,
		"METRICS_ADDR=off",
		"LOG_LEVEL=warn",
		fmt.Sprintf("ACK_WAIT=%s", s.Stream.AckWait),
		fmt.Sprintf("STREAM_DUPLICATES=%s", s.Stream.Duplicates),
		fmt.Sprintf("MAX_ACK_PENDING=%d", s.Stream.MaxAckPending),
		fmt.Sprintf("STREAM_REPLICAS=%d", s.Stream.Replicas),
		// The tests' load generators drive each student far above a
		// person's pace, through outages in which nothing settles; the
		// per-student limits have tests of their own.
		"ATTEMPT_RATE=-1",
		"MAX_UNSETTLED_PER_STUDENT=-1",
	}
}

// Spawn starts `quizstream <command>` as a separate process against the
// stack, with extra environment variables; it is killed when t ends if
// still running.
func (s *Stack) Spawn(t testing.TB, command string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Binary(t), command)
	cmd.Env = append(append(os.Environ(), s.Env()...), env...)
	cmd.Stdout = Writer{t}
	cmd.Stderr = Writer{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// SpawnAPI starts `quizstream api` on addr (a free one when empty), waits
// until its /readyz answers 200 and returns the process and its base URL.
func (s *Stack) SpawnAPI(t testing.TB, addr string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	if addr == "" {
		addr = FreeAddr(t)
	}
	cmd := s.Spawn(t, "api", append([]string{"LISTEN_ADDR=" + addr}, env...)...)
	base := "http://" + addr
	watch(t, base) // api/openapi.yaml holds its answers (openapi.go)
	hc := &http.Client{Timeout: 2 * time.Second}
	WaitFor(t, 30*time.Second, "the api process on "+addr+" to be ready", func() bool {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd, base
}

// FreeAddr returns a loopback address with a port free at the time of
// the call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitFor polls cond until it holds or the deadline passes, then fails t.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CountAttempts returns the number of stored attempt rows.
func (s *Stack) CountAttempts(t testing.TB) int {
	t.Helper()
	return storetest.Int(t, s.DB, `SELECT count(*) FROM attempts`)
}

// WaitDrained waits until the consumer has acknowledged every message in
// the stream, i.e. every accepted attempt was stored.
func (s *Stack) WaitDrained(t testing.TB, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, "the workers to drain the stream", func() bool {
		stream, err := s.JS.Stream(t.Context(), s.Stream.Name)
		if err != nil {
			return false
		}
		info, err := stream.Info(t.Context())
		if err != nil {
			return false
		}
		floor, err := s.Log.AckFloor(t.Context())
		return err == nil && floor >= info.State.LastSeq
	})
}

// AnswersFor answers every question of q: correctly for the first `right`
// questions, wrongly for the rest. (An events.Answer converts from it.)
func AnswersFor(q store.Quiz, right int) []client.Answer {
	out := make([]client.Answer, 0, len(q.Questions))
	for i, qu := range q.Questions {
		for _, ch := range qu.Choices {
			if ch.Correct == (i < right) {
				out = append(out, client.Answer{QuestionID: qu.ID.String(), ChoiceID: ch.ID.String()})
				break
			}
		}
	}
	return out
}

// Client returns a client of the API at base with no token, the one every
// test speaks through. Its calls record their HTTP statuses under a
// context from Statuses.
func Client(base string) *client.Client { return ClientWith(base, client.Options{}) }

// ClientWith is Client with options of the test's own (a longer Deadline,
// say); the HTTP client, when o has none, is Client's.
func ClientWith(base string, o client.Options) *client.Client {
	if o.HTTPClient == nil {
		o.HTTPClient = newHTTPClient()
	}
	return client.New(base, o)
}

// Signup signs a new student up at the API at base and returns a client
// acting as them; it fails t on any error.
func Signup(t testing.TB, base, email string) *client.Client {
	t.Helper()
	c := Client(base)
	_, token, err := c.Signup(t.Context(), email, "Student "+email, "correct horse")
	if err != nil {
		t.Fatalf("apptest: signup %s: %v", email, err)
	}
	return c.WithToken(token)
}
