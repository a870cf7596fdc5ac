package membership

import (
	"bytes"
	"testing"

	"github.com/cpggo/cpg/internal/wire"
)

func TestHeartbeatRoundTrip(t *testing.T) {
	for _, h := range []heartbeat{{}, {Seq: 1, Sent: 12345}, {Seq: 1 << 60, Sent: -7}} {
		for _, typ := range []byte{framePing, framePong} {
			f, err := decodeFrame(typ, appendHeartbeat(nil, h))
			if err != nil {
				t.Fatalf("decode %+v: %v", h, err)
			}
			if f.typ != typ || f.beat != h {
				t.Fatalf("got %+v, want type %d beat %+v", f, typ, h)
			}
		}
	}
}

func TestDecodeFrameRejectsMalformed(t *testing.T) {
	cases := []struct {
		name string
		typ  byte
		body []byte
	}{
		{"type zero", 0, nil},
		{"unknown type", 200, []byte{1}},
		{"truncated ping", framePing, []byte{0x80}},
		{"ping with trailing bytes", framePing, append(appendHeartbeat(nil, heartbeat{Seq: 1}), 9)},
		{"empty pong", framePong, nil},
		{"zero credit", frameCredit, wire.AppendUvarint(nil, 0)},
		{"credit over any window", frameCredit, wire.AppendUvarint(nil, maxLinkWindow+1)},
		{"credit with trailing bytes", frameCredit, append(wire.AppendUvarint(nil, 4), 0)},
	}
	for _, c := range cases {
		if _, err := decodeFrame(c.typ, c.body); err == nil {
			t.Errorf("%s: decoded without error", c.name)
		}
	}
}

func TestDecodeFramePayloadIsVerbatim(t *testing.T) {
	p := []byte("hello, overlay")
	f, err := decodeFrame(framePayload, p)
	if err != nil || !bytes.Equal(f.payload, p) {
		t.Fatalf("payload frame: %v %q", err, f.payload)
	}
}

func TestFrameTypesDoNotOverlapCore(t *testing.T) {
	for _, typ := range []byte{framePayload, framePing, framePong, frameCredit} {
		if classifyFrame(typ) == frameCore {
			t.Fatalf("driver frame type %d falls in the core's range", typ)
		}
	}
}

// FuzzDecodeFrame feeds arbitrary frames (as a reader would see them after
// wire.ReadFrame) to the decoder: it must never panic, and a heartbeat that
// decodes must encode back to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(framePing, appendHeartbeat(nil, heartbeat{Seq: 3, Sent: 99}))
	f.Add(framePong, appendHeartbeat(nil, heartbeat{Seq: 0, Sent: -1}))
	f.Add(framePayload, []byte("x"))
	f.Add(frameCredit, wire.AppendUvarint(nil, 64))
	f.Add(byte(1), []byte{})
	f.Add(byte(7), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		fr, err := decodeFrame(typ, body)
		if err != nil {
			return
		}
		if classifyFrame(typ) == frameHeartbeat {
			if again := appendHeartbeat(nil, fr.beat); !bytes.Equal(again, body) {
				// Varints have one canonical encoding per value except for
				// padded forms, which binary.Uvarint accepts; re-decode to
				// compare values instead of bytes.
				h, err := decodeHeartbeat(again)
				if err != nil || h != fr.beat {
					t.Fatalf("heartbeat %+v does not round-trip", fr.beat)
				}
			}
		}
		// Whatever decodes must also survive being framed and re-read.
		var buf bytes.Buffer
		if err := wire.WriteFrame(&buf, typ, body, wire.DefaultMaxFrame); err != nil {
			return
		}
		typ2, body2, err := wire.ReadFrame(&buf, wire.DefaultMaxFrame)
		if err != nil || typ2 != typ || !bytes.Equal(body2, body) {
			t.Fatalf("frame does not survive the wire: %v", err)
		}
	})
}
