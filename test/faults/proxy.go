package faults

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quizstream/quizstream/app/apptest"
)

// Proxy forwards TCP connections to a target; Cut closes every open
// connection and refuses new ones until Restore, as a network partition
// between the service and PostgreSQL would, and SetDelay adds latency.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	delay  atomic.Int64 // nanoseconds each chunk is held, each way

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// StartProxy listens on a free loopback port and forwards to target (a
// host:port) until t ends; it fails t when it cannot listen.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Proxied puts a Proxy between the stack and PostgreSQL and returns it
// with a copy of the stack whose instances (in this process or spawned)
// reach PostgreSQL through it; s itself, and the copy's Store and DB,
// still reach PostgreSQL directly, for checks. It fails t on a bad URL.
func Proxied(t testing.TB, s *apptest.Stack) (*Proxy, *apptest.Stack) {
	t.Helper()
	u, err := url.Parse(s.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	return proxy, s.WithDatabase(u.String())
}

// Addr returns the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			// Refused: the client sees its connection closed at once.
			in.Close()
			out.Close()
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, each chunk delivered the proxy's delay after it
// was read (latency, not a bandwidth cap: chunks in flight overlap); when
// either side ends, both are closed.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		data []byte
		due  time.Time
	}
	chunks := make(chan chunk, 64)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for c := range chunks {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				src.Close() // ends the reader below
				for range chunks {
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunks <- chunk{data: bytes.Clone(buf[:n]), due: time.Now().Add(time.Duration(p.delay.Load()))}
		}
		if err != nil { // a closed or reset connection ends it either way
			break
		}
	}
	close(chunks)
	<-written
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
	dst.Close()
	src.Close()
}

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// SetDelay holds every chunk d in each direction from now on; 0 removes
// the delay.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Restore lets new connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}
