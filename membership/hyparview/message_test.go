package hyparview

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/cpggo/cpg/internal/wire"
)

func sampleMessages() []ProtocolMessage {
	a := Peer{Name: "a", Addr: "10.0.0.1:7946"}
	b := Peer{Name: "b"}
	return []ProtocolMessage{
		MsgJoin{Epoch: 1},
		MsgJoin{Epoch: MaxEpoch},
		MsgForwardJoin{Joiner: a, TTL: 6},
		MsgForwardJoin{Joiner: b, TTL: 0},
		MsgDisconnect{Epoch: 42},
		MsgNeighbor{High: true, Epoch: 7},
		MsgNeighbor{High: false, Epoch: 0},
		MsgNeighborReply{Accept: true, Epoch: 7, Link: 9},
		MsgNeighborReply{Accept: false, Epoch: 7},
		MsgShuffle{Origin: a, TTL: 6, Peers: []Peer{a, b, {Name: "c", Addr: "[::1]:1"}}},
		MsgShuffle{Origin: b, TTL: 1},
		MsgShuffleReply{Peers: []Peer{b}},
		MsgShuffleReply{},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		typ, body := EncodeMessage(m)
		if typ < 1 || typ > 63 {
			t.Errorf("%v: type %d outside 1..63", m, typ)
		}
		got, err := DecodeMessage(typ, body)
		if err != nil {
			t.Errorf("%v: %v", m, err)
			continue
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %v gave %v", m, got)
		}
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	_, shuffleBody := EncodeMessage(MsgShuffle{Origin: Peer{Name: "a"}, TTL: 3, Peers: []Peer{{Name: "b"}}})
	tooMany := wire.AppendUvarint(nil, maxShufflePeers+1)
	for _, tc := range []struct {
		name string
		typ  byte
		body []byte
		want string
	}{
		{"unknown type", 0, nil, "unknown message type 0"},
		{"unknown type 64", 64, nil, "unknown message type 64"},
		{"empty join", typeJoin, nil, "truncated"},
		{"trailing bytes", typeDisconnect, []byte{1, 2}, "trailing"},
		{"bool out of range", typeNeighbor, []byte{2, 1}, "invalid bool"},
		{"truncated shuffle", typeShuffle, shuffleBody[:len(shuffleBody)-1], "truncated"},
		{"too many peers", typeShuffleReply, tooMany, "exceeds limit"},
		{"empty peer name", typeForwardJoin, []byte{0, 0, 1}, "empty name"},
		{"name too long", typeForwardJoin, append(wire.AppendUvarint(nil, maxNameLen+1), bytes.Repeat([]byte{'x'}, maxNameLen+1)...), "exceeds limit"},
		{"absurd join epoch", typeJoin, wire.AppendUvarint(nil, math.MaxUint64), "exceeds"},
		{"absurd disconnect epoch", typeDisconnect, wire.AppendUvarint(nil, MaxEpoch+1), "exceeds"},
		{"absurd neighbor epoch", typeNeighbor, wire.AppendUvarint([]byte{1}, MaxEpoch+1), "exceeds"},
		{"absurd link epoch", typeNeighborReply, wire.AppendUvarint([]byte{1, 1}, math.MaxUint64), "exceeds"},
		{"ttl over 32 bits", typeForwardJoin, wire.AppendUvarint([]byte{1, 'a', 0}, 1<<32), "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMessage(tc.typ, tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeMessage = %v, %v; want an error containing %q", m, err, tc.want)
			}
			if m != nil {
				t.Fatalf("DecodeMessage returned %v with its error", m)
			}
		})
	}
}

// FuzzDecodeMessage checks that decoding never panics and that every
// message it accepts survives encode and decode unchanged.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		typ, body := EncodeMessage(m)
		f.Add(typ, body)
	}
	f.Add(byte(0), []byte{})
	f.Add(typeShuffle, []byte{1, 'a', 0, 3, 2, 1, 'b', 0})
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		m, err := DecodeMessage(typ, body)
		if err != nil {
			return
		}
		if e, ok := messageEpochs(m); ok && e > MaxEpoch {
			t.Fatalf("%v decoded with an epoch beyond MaxEpoch", m)
		}
		typ2, body2 := EncodeMessage(m)
		if typ2 != typ {
			t.Fatalf("%v decoded from type %d encodes as type %d", m, typ, typ2)
		}
		m2, err := DecodeMessage(typ2, body2)
		if err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", m, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %v into %v", m, m2)
		}
	})
}

// messageEpochs returns the largest epoch m carries, if it carries one.
func messageEpochs(m ProtocolMessage) (uint64, bool) {
	switch m := m.(type) {
	case MsgJoin:
		return m.Epoch, true
	case MsgDisconnect:
		return m.Epoch, true
	case MsgNeighbor:
		return m.Epoch, true
	case MsgNeighborReply:
		return max(m.Epoch, m.Link), true
	}
	return 0, false
}
