package membership

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Node must stop everything it started when it closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
