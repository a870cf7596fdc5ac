//go:build unix

package membership

import "golang.org/x/sys/unix"

// writeNonBlocking is one write system call on a non-blocking descriptor.
func writeNonBlocking(fd uintptr, b []byte) (int, error) {
	return unix.Write(int(fd), b)
}
