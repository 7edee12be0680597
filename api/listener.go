package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// listener is the public listener with the API's rules for connections:
//   - at most MaxConnections are open at once; one more is answered 503
//     with Retry-After, in the HTTP contract's error shape, and closed,
//     rather than left in the kernel's queue where its client learns
//     nothing until it times out;
//   - net/http answers a request it cannot parse (a malformed request
//     line, headers over MaxHeaderBytes) by itself, in plain text and
//     before any handler runs: those answers are rewritten into the error
//     shape on their way out.
type listener struct {
	net.Listener
	slots    chan struct{} // nil: no cap
	refusals chan struct{} // bounds the goroutines answering refused connections
	refusal  []byte
	wg       sync.WaitGroup
	open     prometheus.Gauge
	refused  prometheus.Counter
}

// maxRefusing bounds the refused connections being answered at once; past
// it a refused connection is closed without an answer.
const maxRefusing = 64

func (s *Server) listener(ln net.Listener) *listener {
	l := &listener{
		Listener: ln,
		refusals: make(chan struct{}, maxRefusing),
		open:     s.metrics.connections,
		refused:  s.metrics.refused.WithLabelValues("connections"),
	}
	if s.cfg.MaxConnections > 0 {
		l.slots = make(chan struct{}, s.cfg.MaxConnections)
	}
	body, _ := json.Marshal(errorJSON("unavailable", "too many connections to this server; retry shortly"))
	l.refusal = fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"+
		"Retry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", s.cfg.RetryAfterSeconds, len(body), body)
	return l
}

// Accept returns the next connection within the cap, answering and
// closing those over it meanwhile.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.slots == nil {
			return &conn{Conn: c}, nil
		}
		select {
		case l.slots <- struct{}{}:
			l.open.Inc()
			return &conn{Conn: c, release: func() { l.open.Dec(); <-l.slots }}, nil
		default:
			l.refuse(c)
		}
	}
}

// refuse answers c 503 and closes it, without holding up Accept.
func (l *listener) refuse(c net.Conn) {
	l.refused.Inc()
	select {
	case l.refusals <- struct{}{}:
	default:
		c.Close()
		return
	}
	l.wg.Add(1)
	go func() {
		defer func() { c.Close(); <-l.refusals; l.wg.Done() }()
		// Without the deadline a client that never reads could hold the
		// refusal slot: give up on the answer rather.
		if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
			return
		}
		if _, err := c.Write(l.refusal); err != nil {
			return
		}
		// Read what the client sent before closing: closing with unread
		// data sends a reset, which can destroy the answer in flight.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		// The answer is written: a failed read (the client left, the
		// deadline passed) only ends the draining.
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// wait waits for the refused connections still being answered.
func (l *listener) wait() { l.wg.Wait() }

// conn is an accepted connection: it gives its slot back when closed, and
// rewrites net/http's plain-text error answers.
type conn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.release != nil {
		c.once.Do(c.release)
	}
	return err
}

// CloseWrite keeps the half-close net/http uses before it hangs up on a
// client whose headers were too large.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) Write(p []byte) (int, error) {
	if shaped, ok := shapeCanned(p); ok {
		if _, err := c.Conn.Write(shaped); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// cannedHeaders is what follows the status line of every answer net/http
// writes by itself, in one write, when it cannot read a request (see
// net/http's conn.serve). A response of the API never has them in this
// order: net/http sorts headers, and Connection comes before Content-Type.
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// shapeCanned returns net/http's own error answer p in the HTTP
// contract's error shape; false when p is not one.
func shapeCanned(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || !bytes.HasPrefix(p, []byte(proto)) || (p[len(proto)] != '4' && p[len(proto)] != '5') {
		return nil, false
	}
	i := bytes.Index(p[:min(len(p), 256)], []byte(cannedHeaders))
	if i < 0 {
		return nil, false
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil {
		return nil, false
	}
	// The body repeats the status line ("400 Bad Request: missing required
	// Host header"), or is a sentence of its own.
	msg := strings.TrimPrefix(string(p[i+len(cannedHeaders):]), strconv.Itoa(status)+" ")
	if status == http.StatusRequestHeaderFieldsTooLarge {
		msg = "the request's line and headers are over the limit"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	body, _ := json.Marshal(errorJSON(frameworkCode(status), msg))
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body), true
}
