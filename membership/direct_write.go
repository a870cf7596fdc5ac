package membership

import (
	"encoding/binary"
	"net"
	"syscall"
)

// A payload sent while its link's writer has nothing queued is written to
// the socket by the sender itself, in one non-blocking write: the writer
// goroutine, asleep at that moment, would otherwise have to be woken and
// scheduled first, which on a loaded machine takes from tens of
// microseconds to milliseconds, and a lone change pays it on every link.
// A sender never waits on the socket: when the kernel takes only part of
// the frame, the writer is handed the rest (link.rest), and when it takes
// nothing, or the writer has frames of its own, the frame is queued.

// writeDirect writes frame, a payload frame, to l's socket in the
// caller's goroutine if nothing is queued on the link ahead of it; it
// reports whether the link took the frame (false: queue it).
func (n *Node) writeDirect(l *link, frame []byte) bool {
	if l.unwritten.Load() != 0 || !l.writeMu.TryLock() {
		return false
	}
	defer l.writeMu.Unlock()
	// Under writeMu the writer is not between taking a frame and writing
	// it, so a count of zero means no frame is waiting on this link.
	if l.unwritten.Load() != 0 || l.stopped() || l.established.Load() == 0 {
		return false
	}
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	cost := payloadCost(int(binary.BigEndian.Uint32(frame)))
	if conn == nil || !l.flow.canSend(cost) {
		return false
	}
	// Spent before the write, as the writer does: the peer may take the
	// frame and hand its credit back before this goroutine runs again.
	l.flow.spend(cost)
	written, err := writeNonBlocking(conn, frame)
	if err != nil {
		// The link is broken: the frame is lost with it, as a queued one
		// would be. The failure is reported from another goroutine, since
		// the caller may be in the middle of a turn the node's loop waits on.
		n.spawn(func() { n.linkBroken(l, err) })
		return true
	}
	if written == 0 {
		l.flow.refund(cost)
		return false
	}
	l.directWrites.Add(1)
	if written < len(frame) {
		l.partialWrites.Add(1)
		l.rest = frame[written:]
		l.unwritten.Add(1)
		l.flow.notify() // wakes the writer, which writes the rest first
	}
	return true
}

// writeNonBlocking makes one write of b to conn's socket without waiting
// for room in it; it returns 0 when the socket has no room, or when conn
// is not a kernel socket (a wrapped connection in tests).
func writeNonBlocking(conn net.Conn, b []byte) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, nil
	}
	var written int
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		written, werr = syscall.Write(int(fd), b)
		return true // one attempt: never wait for the socket
	})
	if err != nil {
		return 0, err
	}
	if werr == syscall.EAGAIN || werr == syscall.EINTR {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return max(written, 0), nil
}
