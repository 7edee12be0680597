package api_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the tests start (servers, tails, publishers, pools,
// reloaders) must be gone when they end: a leak here is an owner that does
// not stop its goroutine.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
