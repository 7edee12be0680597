package faults_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a fault test starts (load, proxy, watch, in-process
// instances) must be gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
