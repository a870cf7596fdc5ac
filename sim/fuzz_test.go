package sim

import (
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// FuzzRegistryExchange feeds arbitrary exchange messages to a replica that
// holds some state: it must never panic, and whatever it answers must be a
// well-formed exchange message.
func FuzzRegistryExchange(f *testing.F) {
	peer := crdt.New(crdt.Config{Self: "b", Incarnation: 1})
	peer.LocalJoin("sim", "g", "m", 1, crdt.Meta{"k": "v"}, 1)
	dg := peer.Digest()
	f.Add(crdt.AppendDigest([]byte{exchangeDigest}, &dg))
	delta := peer.Snapshot()
	f.Add(crdt.AppendDelta([]byte{exchangeDelta}, &delta))
	f.Add([]byte{exchangeDeltaDigest, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &registryReplica{st: crdt.New(crdt.Config{Self: "a", Incarnation: 1}), buffered: map[string]struct{}{}}
		r.st.LocalJoin("sim", "g", "x", 2, nil, 1)
		reply, _ := r.ExchangeReceive(plumtree.Exchange{Peer: "b"}, data)
		if reply == nil {
			return
		}
		switch reply[0] {
		case exchangeDeltaDigest:
			other := &registryReplica{st: crdt.New(crdt.Config{Self: "c", Incarnation: 1}), buffered: map[string]struct{}{}}
			other.ExchangeReceive(plumtree.Exchange{Peer: "a"}, reply)
		case exchangeDelta:
			if _, err := crdt.DecodeDelta(reply[1:]); err != nil {
				t.Fatalf("replica answered a malformed delta: %v", err)
			}
		default:
			t.Fatalf("replica answered with message kind %d", reply[0])
		}
	})
}

// FuzzDecodeOpID: an op id either decodes or is refused, never panics, and
// a decoded id encodes back to the same bytes.
func FuzzDecodeOpID(f *testing.F) {
	f.Add(opID(&crdt.Op{Owner: "n00001", Incarnation: 3, Seq: 9}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, id []byte) {
		owner, v, err := decodeOpID(id)
		if err != nil {
			return
		}
		again := opID(&crdt.Op{Owner: owner, Incarnation: v.Incarnation, Seq: v.Seq})
		o2, v2, err := decodeOpID(again)
		if err != nil || o2 != owner || v2 != v {
			t.Fatalf("round trip of %q@%v gave %q@%v, %v", owner, v, o2, v2, err)
		}
	})
}
