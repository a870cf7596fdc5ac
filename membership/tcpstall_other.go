//go:build !linux

package membership

import "net"

// transportStalled is Linux's TCP_INFO only; elsewhere a stalled link is
// noticed by its silence.
func transportStalled(net.Conn) bool { return false }
