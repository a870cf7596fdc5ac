package membership

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Node must stop everything it started when it closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// memberlist's Shutdown does not wait for a probe in flight: the
		// probe's goroutine ends on its own when the probe times out (at
		// most a few probe intervals later). It is memberlist's, bounded,
		// and holds nothing of ours.
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
	)
}
