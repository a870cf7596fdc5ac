//go:build !unix

package membership

import "errors"

// writeNonBlocking is unix only; elsewhere every payload goes through the
// link's writer.
func writeNonBlocking(uintptr, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
