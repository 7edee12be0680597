package worker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a worker starts must be stopped by Run's return.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
