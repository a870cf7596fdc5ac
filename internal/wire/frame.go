package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// A frame on the wire is a 4-byte big-endian length n, then n bytes: one
// type byte followed by the body. The length counts the type byte, so an
// empty frame (n == 0) is malformed.
const frameHeader = 4

// DefaultMaxFrame bounds a frame's length unless a caller sets its own.
const DefaultMaxFrame = 4 << 20

// FrameTooLargeError reports a frame whose declared length exceeds the limit.
type FrameTooLargeError struct {
	Size, Max int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("wire: frame of %d bytes exceeds the %d-byte limit", e.Size, e.Max)
}

// AppendFrame appends a frame holding typ and body to b.
func AppendFrame(b []byte, typ byte, body []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)+1))
	b = append(b, typ)
	return append(b, body...)
}

// WriteFrame writes one frame to w. It refuses a body over max rather than
// send what the peer would refuse.
func WriteFrame(w io.Writer, typ byte, body []byte, max int) error {
	if len(body)+1 > max {
		return &FrameTooLargeError{Size: len(body) + 1, Max: max}
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, frameHeader+1+len(body)), typ, body))
	return err
}

// ReadFrame reads one frame from r. The body is freshly allocated, so the
// caller may keep it. A declared length over max is refused before any of
// the body is read, so a hostile peer cannot make us allocate it.
func ReadFrame(r io.Reader, max int) (typ byte, body []byte, err error) {
	var hdr [frameHeader + 1]byte
	if _, err := io.ReadFull(r, hdr[:frameHeader]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:frameHeader]))
	if n == 0 {
		return 0, nil, fmt.Errorf("wire: empty frame")
	}
	if n > max {
		return 0, nil, &FrameTooLargeError{Size: n, Max: max}
	}
	if _, err := io.ReadFull(r, hdr[frameHeader:]); err != nil {
		return 0, nil, unexpected(err)
	}
	body = make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, unexpected(err)
	}
	return hdr[frameHeader], body, nil
}

// unexpected turns a clean EOF inside a frame into ErrUnexpectedEOF: the
// stream ended mid-frame, which is not a clean close.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
