package api_test

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
)

// BenchmarkConnectionMemory measures the memory (Go heap and stacks) an
// open connection costs the API, idle after a request and pending (its
// request not sent): what MAX_CONNECTIONS is sized from
// (docs/security.md). The client's ends are in this process too and are
// counted, a few hundred bytes each. Run it with -benchtime=1x.
func BenchmarkConnectionMemory(b *testing.B) {
	const n = 2000
	s := apptest.New(b, streams.StreamConfig{})
	in := s.StartAPI(b, api.Config{MaxPendingPerAddress: -1, MaxConnsPerAddress: -1})
	addr := strings.TrimPrefix(in.URL, "http://")
	inUse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	for _, mode := range []string{"idle", "pending"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				before := inUse()
				conns := make([]net.Conn, 0, n)
				for range n {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
					if mode == "idle" {
						c.SetDeadline(time.Now().Add(30 * time.Second))
						if r := ask(b, c); r.Status != 200 {
							b.Fatalf("status %d", r.Status)
						}
					}
				}
				// The listener accepts in order: once a later connection is
				// answered, every one before it is being served.
				last, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				last.SetDeadline(time.Now().Add(30 * time.Second))
				ask(b, last)
				last.Close()
				b.ReportMetric(float64(inUse()-before)/n, "B/conn")
				for _, c := range conns {
					c.Close()
				}
			}
		})
	}
}
