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
//   - one client address (the TCP peer's: a trusted proxy's connections
//     are not capped, since they carry many clients) has at most
//     MaxConnsPerAddress open, and at most MaxPendingPerAddress of them
//     not yet answered a request; one more is answered 503 and closed, so
//     that one address cannot take every slot from the others;
//   - net/http answers a request it cannot parse (a malformed request
//     line, headers over MaxHeaderBytes) by itself, in plain text and
//     before any handler runs: those answers are rewritten into the error
//     shape on their way out.
type listener struct {
	net.Listener
	slots    chan struct{} // nil: no cap
	refusals chan struct{} // bounds the goroutines answering refused connections
	full     []byte        // the answer past MaxConnections
	tooMany  []byte        // the answer past an address's caps
	wg       sync.WaitGroup
	open     prometheus.Gauge
	refused  func(limit string)

	trusted        []*net.IPNet // peers not capped per address
	perAddr        int          // <= 0: no cap
	pendingPerAddr int          // <= 0: no cap
	mu             sync.Mutex
	addrs          map[string]*addrConns // of the addresses with open connections
}

// addrConns are one address's open connections, and of them those not yet
// answered a request.
type addrConns struct{ open, pending int }

// maxRefusing bounds the refused connections being answered at once; past
// it a refused connection is closed without an answer.
const maxRefusing = 64

func (s *Server) listener(ln net.Listener) *listener {
	trusted, _ := trustedRanges(s.cfg.TrustedProxies) // checked by Config.defaults
	l := &listener{
		Listener:       ln,
		refusals:       make(chan struct{}, maxRefusing),
		open:           s.metrics.connections,
		refused:        s.refusal,
		trusted:        trusted,
		perAddr:        s.cfg.MaxConnsPerAddress,
		pendingPerAddr: s.cfg.MaxPendingPerAddress,
		addrs:          map[string]*addrConns{},
	}
	if s.cfg.MaxConnections > 0 {
		l.slots = make(chan struct{}, s.cfg.MaxConnections)
	}
	l.full = canned(http.StatusServiceUnavailable, "unavailable", "too many connections to this server; retry shortly", s.cfg.RetryAfterSeconds)
	// 503 as for the listener's cap, not 429: it is answered before any
	// request is read, on any route, and every route's contract has 503.
	l.tooMany = canned(http.StatusServiceUnavailable, "unavailable", "too many connections from this address; retry shortly", s.cfg.RetryAfterSeconds)
	return l
}

// canned is a whole answer that closes the connection, written by the
// listener before net/http sees the connection.
func canned(status int, code, msg string, retryAfter int) []byte {
	body, _ := json.Marshal(errorJSON(code, msg))
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"+
		"Retry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", status, http.StatusText(status), retryAfter, len(body), body)
}

// Accept returns the next connection within the caps, answering and
// closing those over them meanwhile.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cn := &conn{Conn: c, l: l}
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
				l.open.Inc()
				cn.slot = true
			default:
				l.refuse(c, "connections", l.full)
				continue
			}
		}
		if limit := l.admit(cn); limit != "" {
			cn.release()
			l.refuse(c, limit, l.tooMany)
			continue
		}
		return cn, nil
	}
}

// admit counts cn against its address's caps; it returns the limit that
// refuses it ("" for none).
func (l *listener) admit(cn *conn) string {
	if l.perAddr <= 0 && l.pendingPerAddr <= 0 {
		return ""
	}
	tcp, ok := cn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	for _, r := range l.trusted {
		if r.Contains(tcp.IP) {
			return ""
		}
	}
	key := ipKey(tcp.IP)
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[key]
	if a == nil {
		a = &addrConns{}
		l.addrs[key] = a
	}
	switch {
	case l.perAddr > 0 && a.open >= l.perAddr:
		return "address_connections"
	case l.pendingPerAddr > 0 && a.pending >= l.pendingPerAddr:
		return "address_pending"
	}
	a.open++
	a.pending++
	cn.key = key
	cn.pending = true
	return ""
}

// connState is the http.Server's ConnState: a connection answered a
// request (idle between requests) is no longer pending.
func (l *listener) connState(nc net.Conn, st http.ConnState) {
	if st != http.StateIdle && st != http.StateHijacked {
		return
	}
	if cn, ok := nc.(*conn); ok {
		l.settle(cn, false)
	}
}

// settle takes cn off its address's pending count, and when closed off
// its open count too.
func (l *listener) settle(cn *conn, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[cn.key]
	if cn.key == "" || a == nil {
		return
	}
	if cn.pending {
		cn.pending = false
		a.pending--
	}
	if closed {
		a.open--
		if a.open == 0 {
			delete(l.addrs, cn.key)
		}
		cn.key = ""
	}
}

// refuse counts the refusal by limit, answers c and closes it, without
// holding up Accept.
func (l *listener) refuse(c net.Conn, limit string, answer []byte) {
	l.refused(limit)
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
		if _, err := c.Write(answer); err != nil {
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

// conn is an accepted connection: it gives its slot and its place in its
// address's counts back when closed, and rewrites net/http's plain-text
// error answers.
type conn struct {
	net.Conn
	l    *listener
	slot bool // holds one of l.slots
	// key is the address the connection counts against ("" for none) and
	// pending whether it is counted as not yet answered; both under l.mu.
	key     string
	pending bool
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// release gives back what the connection holds.
func (c *conn) release() {
	c.l.settle(c, true)
	if c.slot {
		c.l.open.Dec()
		<-c.l.slots
	}
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
