// Package wire holds the low-level encoding pieces every protocol package
// shares: append-style encoders, a bounds-checked decoder with a sticky
// error, and the length-type-body frame. Message types and their layouts
// stay in the protocol packages; only these mechanics are common.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrTruncated reports a body that ends before a field it declares.
var ErrTruncated = errors.New("wire: truncated message")

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendVarint appends v as a zig-zag signed varint.
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendString appends a length-prefixed string.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBytes appends a length-prefixed byte slice.
func AppendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendBool appends a single byte 0 or 1.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// Decoder reads fields from a message body. The first failure sticks: every
// later read returns a zero value, so a decode function reads all its fields
// and checks Err once at the end. A decoder never panics on any input.
type Decoder struct {
	buf []byte
	err error
}

// NewDecoder returns a decoder over b; it does not copy b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Err returns the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Len is the number of bytes not yet read.
func (d *Decoder) Len() int { return len(d.buf) }

// Fail records err unless an earlier error is already recorded; decode
// functions use it for semantic checks (an unknown enum value, say).
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Finish reports an error if bytes remain after the last field: a message
// with trailing garbage is malformed, not silently accepted.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("wire: %d trailing bytes", len(d.buf))
	}
	return d.err
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = ErrTruncated
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Varint reads a zig-zag signed varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = ErrTruncated
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Uint32 reads an unsigned varint that must fit in 32 bits.
func (d *Decoder) Uint32() uint32 {
	v := d.Uvarint()
	if v > math.MaxUint32 {
		d.Fail(fmt.Errorf("wire: value %d overflows uint32", v))
		return 0
	}
	return uint32(v)
}

// Int reads an unsigned varint that must be at most max, as an int; use it
// for counts so a hostile count cannot drive a huge allocation.
func (d *Decoder) Int(max int) int {
	v := d.Uvarint()
	if v > uint64(max) {
		d.Fail(fmt.Errorf("wire: count %d exceeds limit %d", v, max))
		return 0
	}
	return int(v)
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 1 {
		d.err = ErrTruncated
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.Fail(errors.New("wire: invalid bool"))
		return false
	}
}

// Bytes reads a length-prefixed byte slice of at most max bytes. The result
// aliases the decoder's buffer.
func (d *Decoder) Bytes(max int) []byte {
	n := d.Int(max)
	if d.err != nil {
		return nil
	}
	if len(d.buf) < n {
		d.err = ErrTruncated
		return nil
	}
	p := d.buf[:n:n]
	d.buf = d.buf[n:]
	return p
}

// String reads a length-prefixed string of at most max bytes.
func (d *Decoder) String(max int) string {
	return string(d.Bytes(max))
}

// Rest returns what remains of the buffer, unread, and leaves the decoder
// empty: for a message whose last field is another encoding's bytes.
func (d *Decoder) Rest() []byte {
	if d.err != nil {
		return nil
	}
	rest := d.buf
	d.buf = nil
	return rest
}
