package readmodel_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (in-process instances, load) must be gone
// when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
