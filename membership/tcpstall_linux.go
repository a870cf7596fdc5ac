package membership

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// transportStalled reports whether the connection's TCP holds data the
// peer has not acknowledged past a retransmission timeout: the kernel has
// retransmitted and is backing off. A peer whose process is slow or
// stopped does not cause that (its kernel still acknowledges), a cut path
// does. False when the connection is not a kernel TCP socket.
func transportStalled(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	stalled := false
	_ = raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		stalled = info.Unacked > 0 && (info.Retransmits > 0 || info.Backoff > 0)
	})
	return stalled
}
