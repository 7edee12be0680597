package load

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// sourceAddrs gives each student a loopback address of its own to connect
// from, as students on exam day come from their own machines: the API's
// limits per client address (signups and logins) then apply per student,
// as they would in production, not to the whole load at once. All of
// 127.0.0.0/8 is the loopback interface on Linux.
type sourceAddrs struct {
	perStudent int // idle connections a student's transport keeps

	mu         sync.Mutex
	transports []*http.Transport
}

// maxSourceAddrs is how many students have an address of their own:
// 127.10.0.1 to 127.255.249.250, 250 to each /24.
const maxSourceAddrs = (256 - 10) * 250 * 250

// addr returns student i's address: 127.10.0.1, 127.10.0.2, ... It panics
// when i is out of [0, maxSourceAddrs), which Config.defaults rules out.
func addr(i int) net.IP {
	if i < 0 || i >= maxSourceAddrs {
		panic(fmt.Sprintf("load: student %d has no address of its own", i))
	}
	return net.IPv4(127, byte(10+i/(250*250)), byte(i/250%250), byte(i%250+1))
}

// client returns an HTTP client whose connections come from student i's
// address.
func (a *sourceAddrs) client(i int) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: addr(i)}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, a.perStudent
	a.mu.Lock()
	a.transports = append(a.transports, tr)
	a.mu.Unlock()
	return &http.Client{Transport: tr}
}

// close closes every student's idle connections.
func (a *sourceAddrs) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tr := range a.transports {
		tr.CloseIdleConnections()
	}
}

// isLoopback reports whether base's host is a loopback IP address (a name
// is not resolved: "localhost" may not be).
func isLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}
