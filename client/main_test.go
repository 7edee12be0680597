package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (servers, workers, connections the client
// keeps) must be gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
