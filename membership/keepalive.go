package membership

import (
	"time"
)

// keepAliveMisses is how many heartbeat periods a link may stay silent
// before it is declared failed, whatever the measured round trip: with one
// ping per period, a healthy link has at most one period plus one round
// trip between frames, so three periods tolerate a lost or delayed pong
// without letting a dead link linger.
const keepAliveMisses = 3

// linkTimeout is how long an active link may go without any frame before
// the driver reports it failed: one keepalive period (the longest a healthy
// peer waits before its next ping) plus the RTO of the link, and never less
// than keepAliveMisses periods.
func linkTimeout(keepAlive, rto time.Duration) time.Duration {
	return max(keepAlive+rto, keepAliveMisses*keepAlive)
}
