package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFieldsRoundTrip(t *testing.T) {
	var b []byte
	b = AppendUvarint(b, 300)
	b = AppendVarint(b, -7)
	b = AppendString(b, "héllo")
	b = AppendBytes(b, []byte{1, 2})
	b = AppendBool(b, true)
	d := NewDecoder(b)
	require.Equal(t, uint64(300), d.Uvarint())
	require.Equal(t, int64(-7), d.Varint())
	require.Equal(t, "héllo", d.String(16))
	require.Equal(t, []byte{1, 2}, d.Bytes(16))
	require.True(t, d.Bool())
	require.NoError(t, d.Finish())
}

func TestDecoderRefusesBadInput(t *testing.T) {
	long := AppendString(nil, "abcdef")
	d := NewDecoder(long)
	d.String(3)
	require.ErrorContains(t, d.Err(), "exceeds limit")

	d = NewDecoder(AppendString(nil, "abc")[:2])
	d.String(10)
	require.ErrorIs(t, d.Err(), ErrTruncated)
	require.Equal(t, uint64(0), d.Uvarint(), "an error sticks")

	d = NewDecoder([]byte{2})
	d.Bool()
	require.ErrorContains(t, d.Err(), "invalid bool")

	d = NewDecoder([]byte{1, 9})
	d.Byte()
	require.ErrorContains(t, d.Finish(), "trailing")

	d = NewDecoder(AppendUvarint(nil, 1<<40))
	d.Uint32()
	require.ErrorContains(t, d.Err(), "overflows")
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteFrame(&buf, 7, []byte("body"), 64))
	require.NoError(t, WriteFrame(&buf, 8, nil, 64))
	typ, body, err := ReadFrame(&buf, 64)
	require.NoError(t, err)
	require.Equal(t, byte(7), typ)
	require.Equal(t, []byte("body"), body)
	typ, body, err = ReadFrame(&buf, 64)
	require.NoError(t, err)
	require.Equal(t, byte(8), typ)
	require.Empty(t, body)
	_, _, err = ReadFrame(&buf, 64)
	require.ErrorIs(t, err, io.EOF, "a clean end between frames is EOF")

	var tooBig *FrameTooLargeError
	require.ErrorAs(t, WriteFrame(&buf, 1, make([]byte, 64), 64), &tooBig)
	_, _, err = ReadFrame(bytes.NewReader(AppendFrame(nil, 1, make([]byte, 100))), 64)
	require.ErrorAs(t, err, &tooBig, "an oversized frame is refused before its body is read")

	half := AppendFrame(nil, 1, []byte("abcdef"))[:7]
	_, _, err = ReadFrame(bytes.NewReader(half), 64)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, _, err = ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0}), 64)
	require.Error(t, err)
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, 1, []byte("x")))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			typ, body, err := ReadFrame(r, 1024)
			if err != nil {
				var tooBig *FrameTooLargeError
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &tooBig) && err.Error() != "wire: empty frame" {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			again := AppendFrame(nil, typ, body)
			if _, _, err := ReadFrame(bytes.NewReader(again), 1024); err != nil {
				t.Fatalf("re-encoded frame does not decode: %v", err)
			}
		}
	})
}

func FuzzDecoder(f *testing.F) {
	f.Add(AppendString(AppendUvarint(nil, 5), "abc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(data)
		d.Uvarint()
		d.String(8)
		d.Bytes(8)
		d.Bool()
		d.Uint32()
		d.Int(100)
		d.Varint()
		_ = d.Finish()
	})
}
