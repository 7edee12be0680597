//go:build faults

package suite

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the tests start (servers, pools, watchers) must be gone
// when they end: a leak here is an owner that does not stop its goroutine.
//
// Except one race of nats-server's own, seen once on a loaded machine: a
// clustered server can open a stream's file store while it shuts down (a
// stream assignment in flight), and that store's flush loops, with the
// access-time ticker every file store shares, outlive WaitForShutdown. A
// server this suite failed to stop would leave its accept loops and
// routes too, and those are still reported.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*msgBlock).flushLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
	)
}
