package membership

import (
	"errors"
	"io"
	"syscall"
	"time"
)

// A process that crashed leaves evidence a failure detector cannot give
// quickly: its kernel closes its connections, and nobody listens on its
// port any more. When an active link is closed by the other end, the node
// dials the peer once: a refused connection means the process is gone, and
// the status stream says so at once (StatusEvent.Certain), long before
// memberlist's probes and suspicion rule it dead.

// goneProbeTimeout bounds the confirming dial.
const goneProbeTimeout = 500 * time.Millisecond

// goneProbePauses space the confirming dials. A process killed outright
// closes its sockets one by one, and its links can close before its
// listener does: until then the kernel still completes handshakes on the
// listener, so an accepted dial right after the link closed proves
// nothing. Only a peer that accepts every dial is taken to be alive. The
// first pauses are short because the listener is usually gone a few
// milliseconds after the links (the slowest of 20 purges after kill -9
// took 10.6 ms with the 2 ms dial, 16.2 ms without; BENCHMARKS.md).
var goneProbePauses = []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond}

// closedByPeer reports whether a link ended because the other end closed
// or reset the connection (as opposed to a timeout or our own close).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// confirmGone dials peer, off the loop, a few times over a moment (see
// goneProbePauses), and records it certainly gone as soon as a connection
// is refused.
func (n *Node) confirmGone(peer Peer) {
	if peer.Addr == "" {
		return
	}
	n.spawn(func() {
		for _, pause := range goneProbePauses {
			select {
			case <-time.After(pause):
			case <-n.closing.Done():
				return
			}
			conn, err := n.dialAddr(peer.Addr, goneProbeTimeout)
			if err == nil {
				conn.Close()
				continue
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				n.log.Info("membership: peer process gone", "peer", peer.Name)
				n.table.confirmGone(peer.Name)
				return
			}
			// Any other failure (a reset from a listener torn down
			// mid-handshake, a timeout) proves nothing: dial again.
		}
	})
}
