package deploy_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The in-process api and worker instances of TestSeriesExported must be
// gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
