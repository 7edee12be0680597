// Package judge0test serves a fake Judge0 over httptest, for tests of code
// checks. It speaks Judge0's documented API (the submission and batch
// endpoints, status ids, base64_encoded, fields, X-Auth-Token) but runs
// nothing: a program's behaviour is written in its source.
//
// # What a "program" does
//
// The fake reads directives from the source: every line holding the marker
// "judge0test:" carries one after it, so a real program can carry them in
// a comment (# judge0test: echo). Arguments are Go-quoted strings.
//
//	judge0test: "1 2\n" -> "3\n"   on that exact stdin, print that stdout
//	judge0test: echo               on any other stdin, print the stdin
//	judge0test: stderr "text"      also write text to stderr
//	judge0test: status N "text"    end every run with status N; text goes
//	                               where Judge0 puts it: compile_output (6),
//	                               stderr (7-12), message (13, 14), else stdout
//	judge0test: time MS            report MS milliseconds of CPU time
//
// Without a status directive a run prints what the table (or echo) says,
// or nothing, and gets status 3 (Accepted) when that stdout equals the
// expected output as Judge0 compares them (each line's trailing spaces
// and the trailing newlines ignored; an empty stdout is null and matches
// no expected output, not even an empty one), else 4 (Wrong Answer);
// without an expected output, 3.
//
// # Faults
//
// A submission is In Queue at its first poll and Processing at the next
// ones, for Config.Polls polls, then final. Config.FailRate of the
// requests answer 500/502/503, Config.HangRate hang until the client gives
// up, and Config.InternalRate of the submissions end as 13 (Internal
// Error), all drawn from one generator seeded with Config.Seed. SetDown
// makes every request close its connection unanswered. Every request
// received is counted, down or not.
package judge0test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Config configures a Fake. The zero Config is a healthy, fast Judge0
// without authentication.
type Config struct {
	// Token, when set, must arrive as X-Auth-Token: else 401.
	Token string
	// Delay is added before every answer.
	Delay time.Duration
	// Polls is how many polls see a submission unfinished (In Queue, then
	// Processing) before its final status. Defaults to 0: final at once.
	Polls int
	// FailRate is the share of requests answered 500, 502 or 503.
	FailRate float64
	// HangRate is the share of requests that get no answer until the
	// client gives up (or the fake closes).
	HangRate float64
	// InternalRate is the share of submissions that end as status 13.
	InternalRate float64
	// Seed seeds the draws of the rates above.
	Seed uint64
	// MaxBatch caps the submissions of a batch (Judge0's default 20).
	MaxBatch int
	// Languages are the language ids accepted. Defaults to Judge0 CE's
	// 43-89.
	Languages map[int]bool
}

// Stats counts what the fake received.
type Stats struct {
	Requests    int64 // every HTTP request, down or not
	Refused     int64 // closed unanswered while down
	Failed      int64 // answered 5xx by FailRate
	Hung        int64 // left unanswered by HangRate
	Unauthed    int64 // answered 401
	Submissions int64 // submissions created
	Polls       int64 // GET requests of submissions answered
	MaxInFlight int64 // most requests handled at once
}

// Fake is a fake Judge0 server.
type Fake struct {
	// URL is the server's base URL, for checker.Config.URL.
	URL string

	cfg  Config
	srv  *httptest.Server
	done chan struct{}
	once sync.Once

	down     atomic.Bool
	inFlight atomic.Int64
	stats    struct {
		requests, refused, failed, hung, unauthed, submissions, polls, maxInFlight atomic.Int64
	}
	authSeen sync.Map // X-Auth-Token values received

	mu       sync.Mutex
	rng      *rand.Rand
	subs     map[string]*sub
	next     int
	bySource map[string]int
}

type sub struct {
	language int
	source   string
	stdin    *string
	expected *string
	seen     int // polls answered
	internal bool
	final    result
}

// New starts a Fake; Close stops it.
func New(cfg Config) *Fake {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 20
	}
	if cfg.Languages == nil {
		cfg.Languages = map[int]bool{}
		for id := 43; id <= 89; id++ {
			cfg.Languages[id] = true
		}
	}
	f := &Fake{
		cfg:      cfg,
		done:     make(chan struct{}),
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), //nolint:gosec // G404: seeded, so that a flaky run can be replayed
		subs:     map[string]*sub{},
		bySource: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /submissions/batch", f.batchCreate)
	mux.HandleFunc("GET /submissions/batch", f.batchShow)
	mux.HandleFunc("POST /submissions", f.create)
	mux.HandleFunc("GET /submissions/{token}", f.show)
	mux.HandleFunc("GET /statuses", f.statuses)
	f.srv = httptest.NewServer(f.wrap(mux))
	f.URL = f.srv.URL
	return f
}

// Start starts a Fake that t's cleanup closes.
func Start(t testing.TB, cfg Config) *Fake {
	t.Helper()
	f := New(cfg)
	t.Cleanup(f.Close)
	return f
}

// Close releases hanging requests and stops the server. It is safe to
// call more than once.
func (f *Fake) Close() {
	f.once.Do(func() {
		close(f.done)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
}

// SetDown makes the fake refuse (true) or answer (false) from now on.
func (f *Fake) SetDown(down bool) { f.down.Store(down) }

// Stats returns the counts so far.
func (f *Fake) Stats() Stats {
	return Stats{
		Requests:    f.stats.requests.Load(),
		Refused:     f.stats.refused.Load(),
		Failed:      f.stats.failed.Load(),
		Hung:        f.stats.hung.Load(),
		Unauthed:    f.stats.unauthed.Load(),
		Submissions: f.stats.submissions.Load(),
		Polls:       f.stats.polls.Load(),
		MaxInFlight: f.stats.maxInFlight.Load(),
	}
}

// SubmissionsOf returns how many submissions of this (decoded) source the
// fake accepted: a test that gives each check a source of its own counts
// how often each was sent.
func (f *Fake) SubmissionsOf(source string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bySource[source]
}

// SawToken reports whether any request carried X-Auth-Token tok.
func (f *Fake) SawToken(tok string) bool {
	_, ok := f.authSeen.Load(tok)
	return ok
}

func (f *Fake) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.stats.requests.Add(1)
		n := f.inFlight.Add(1)
		defer f.inFlight.Add(-1)
		for {
			m := f.stats.maxInFlight.Load()
			if n <= m || f.stats.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		if tok := r.Header.Get("X-Auth-Token"); tok != "" {
			f.authSeen.Store(tok, true)
		}
		if f.down.Load() {
			f.stats.refused.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if f.cfg.Delay > 0 && !f.sleep(r, f.cfg.Delay) {
			return
		}
		f.mu.Lock()
		p := f.rng.Float64()
		code := [...]int{500, 502, 503}[f.rng.IntN(3)]
		f.mu.Unlock()
		switch {
		case p < f.cfg.FailRate:
			f.stats.failed.Add(1)
			writeJSON(w, code, map[string]string{"error": "fake failure"})
			return
		case p < f.cfg.FailRate+f.cfg.HangRate:
			f.stats.hung.Add(1)
			f.sleep(r, time.Hour)
			return
		}
		if f.cfg.Token != "" && r.Header.Get("X-Auth-Token") != f.cfg.Token {
			f.stats.unauthed.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sleep waits d, or until the client leaves or the fake closes (false).
func (f *Fake) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-f.done:
	}
	return false
}

// wireSub is a submission as Judge0 takes it.
type wireSub struct {
	SourceCode     *string `json:"source_code"`
	LanguageID     *int    `json:"language_id"`
	Stdin          *string `json:"stdin"`
	ExpectedOutput *string `json:"expected_output"`
}

func (f *Fake) create(w http.ResponseWriter, r *http.Request) {
	var in wireSub
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	tok, errs := f.add(in, base64On(r))
	if errs != nil {
		writeJSON(w, http.StatusUnprocessableEntity, errs)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": tok})
}

func (f *Fake) batchCreate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Submissions []wireSub `json:"submissions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	switch n := len(in.Submissions); {
	case n == 0:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "there should be at least one submission in a batch"})
		return
	case n > f.cfg.MaxBatch:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("number of submissions in a batch should be less than or equal to %d", f.cfg.MaxBatch)})
		return
	}
	out := make([]any, len(in.Submissions))
	valid := false
	for i, s := range in.Submissions {
		tok, errs := f.add(s, base64On(r))
		if errs != nil {
			out[i] = errs
			continue
		}
		out[i] = map[string]string{"token": tok}
		valid = true
	}
	code := http.StatusCreated
	if !valid {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, out)
}

// add validates and stores one submission; it returns its token, or the
// errors Judge0 would answer.
func (f *Fake) add(in wireSub, b64 bool) (string, map[string][]string) {
	errs := map[string][]string{}
	if in.SourceCode == nil || *in.SourceCode == "" {
		errs["source_code"] = []string{"can't be blank"}
	}
	if in.LanguageID == nil {
		errs["language_id"] = []string{"can't be blank"}
	} else if !f.cfg.Languages[*in.LanguageID] {
		errs["language_id"] = []string{fmt.Sprintf("language with id %d doesn't exist", *in.LanguageID)}
	}
	if len(errs) > 0 {
		return "", errs
	}
	s := &sub{language: *in.LanguageID, source: *in.SourceCode, stdin: in.Stdin, expected: in.ExpectedOutput}
	if b64 {
		for _, p := range []*string{&s.source} {
			d, err := base64.StdEncoding.DecodeString(*p)
			if err != nil {
				return "", map[string][]string{"source_code": {"invalid base64"}}
			}
			*p = string(d)
		}
		for name, p := range map[string]**string{"stdin": &s.stdin, "expected_output": &s.expected} {
			if *p == nil {
				continue
			}
			d, err := base64.StdEncoding.DecodeString(**p)
			if err != nil {
				return "", map[string][]string{name: {"invalid base64"}}
			}
			v := string(d)
			*p = &v
		}
	}
	s.final = run(s.source, deref(s.stdin), s.expected)
	f.mu.Lock()
	defer f.mu.Unlock()
	s.internal = f.rng.Float64() < f.cfg.InternalRate
	f.next++
	tok := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.next)
	f.subs[tok] = s
	f.bySource[s.source]++
	f.stats.submissions.Add(1)
	return tok, nil
}

func (f *Fake) show(w http.ResponseWriter, r *http.Request) {
	fields, bad := parseFields(r.URL.Query().Get("fields"))
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid fields: [" + bad + "]"})
		return
	}
	tok := r.PathValue("token")
	f.mu.Lock()
	s, ok := f.subs[tok]
	var out map[string]any
	if ok {
		out = f.view(tok, s, fields, base64On(r))
	}
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "submission not found"})
		return
	}
	f.stats.polls.Add(1)
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) batchShow(w http.ResponseWriter, r *http.Request) {
	fields, bad := parseFields(r.URL.Query().Get("fields"))
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid fields: [" + bad + "]"})
		return
	}
	tokens := strings.Split(strings.TrimSpace(r.URL.Query().Get("tokens")), ",")
	if len(tokens) == 1 && tokens[0] == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "there should be at least one submission in a batch"})
		return
	}
	if len(tokens) > f.cfg.MaxBatch {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("number of submissions in a batch should be less than or equal to %d", f.cfg.MaxBatch)})
		return
	}
	out := make([]any, len(tokens))
	f.mu.Lock()
	for i, tok := range tokens {
		if s, ok := f.subs[tok]; ok {
			out[i] = f.view(tok, s, fields, base64On(r))
		} // else null, as Judge0 answers for a token it does not know
	}
	f.mu.Unlock()
	f.stats.polls.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{"submissions": out})
}

// view advances s by one poll and renders the fields asked for. f.mu is
// held.
func (f *Fake) view(tok string, s *sub, fields []string, b64 bool) map[string]any {
	s.seen++
	res := s.final
	switch {
	case s.seen == 1 && f.cfg.Polls > 0:
		res = result{status: 1}
	case s.seen <= f.cfg.Polls:
		res = result{status: 2}
	case s.internal:
		msg := "fake sandbox failure"
		res = result{status: 13, message: &msg}
	}
	text := func(p *string) any {
		if p == nil {
			return nil
		}
		if b64 {
			return encode64(*p)
		}
		return *p
	}
	out := map[string]any{}
	for _, name := range fields {
		switch name {
		case "token":
			out[name] = tok
		case "status":
			out[name] = map[string]any{"id": res.status, "description": statusNames[res.status]}
		case "status_id":
			out[name] = res.status
		case "language_id":
			out[name] = s.language
		case "stdout":
			out[name] = text(res.stdout)
		case "stderr":
			out[name] = text(res.stderr)
		case "compile_output":
			out[name] = text(res.compileOutput)
		case "message":
			out[name] = text(res.message)
		case "source_code":
			out[name] = text(&s.source)
		case "stdin":
			out[name] = text(s.stdin)
		case "expected_output":
			out[name] = text(s.expected)
		case "time":
			if res.status > 2 {
				out[name] = fmt.Sprintf("%.3f", float64(res.timeMS)/1000) // a decimal string, as Judge0 writes it
			} else {
				out[name] = nil
			}
		case "memory":
			if res.status > 2 {
				out[name] = 1024
			} else {
				out[name] = nil
			}
		}
	}
	return out
}

var (
	allFields     = []string{"token", "status", "status_id", "language_id", "stdout", "stderr", "compile_output", "message", "source_code", "stdin", "expected_output", "time", "memory"}
	defaultFields = []string{"token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status"}
)

func parseFields(s string) ([]string, string) {
	if s == "" {
		return defaultFields, ""
	}
	var out, bad []string
	for _, f := range strings.Split(s, ",") {
		switch {
		case f == "*":
			return allFields, ""
		case contains(allFields, f):
			out = append(out, f)
		default:
			bad = append(bad, f)
		}
	}
	return out, strings.Join(bad, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (f *Fake) statuses(w http.ResponseWriter, _ *http.Request) {
	out := make([]map[string]any, 0, len(statusNames))
	for id := 1; id <= 14; id++ {
		out = append(out, map[string]any{"id": id, "description": statusNames[id]})
	}
	writeJSON(w, http.StatusOK, out)
}

var statusNames = map[int]string{
	1: "In Queue", 2: "Processing", 3: "Accepted", 4: "Wrong Answer",
	5: "Time Limit Exceeded", 6: "Compilation Error",
	7: "Runtime Error (SIGSEGV)", 8: "Runtime Error (SIGXFSZ)", 9: "Runtime Error (SIGFPE)",
	10: "Runtime Error (SIGABRT)", 11: "Runtime Error (NZEC)", 12: "Runtime Error (Other)",
	13: "Internal Error", 14: "Exec Format Error",
}

// encode64 is Ruby's Base64.encode64, which Judge0 uses: a newline after
// every 60 characters and at the end.
func encode64(s string) string {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 60 {
		b.WriteString(e[:60])
		b.WriteByte('\n')
		e = e[60:]
	}
	if e != "" {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}

func base64On(r *http.Request) bool { return r.URL.Query().Get("base64_encoded") == "true" }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
