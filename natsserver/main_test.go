package natsserver_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the publisher starts must end with its connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
