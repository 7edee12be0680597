package checks_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (in-process instances, fakes) must be
// gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
