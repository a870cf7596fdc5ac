package replication

import (
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// fuzzReplica is a replica holding some state of its own and of a peer.
func fuzzReplica() *Replica {
	st := crdt.New(crdt.Config{Self: "a", Incarnation: 1})
	st.LocalJoin("s", "g", "x", 2, crdt.Meta{"k": "v"}, 1)
	peer := crdt.New(crdt.Config{Self: "b", Incarnation: 1})
	peer.LocalJoin("s", "g", "m", 1, nil, 1)
	if os, ok := peer.OwnerState("b"); ok {
		st.MergeOwner(&os)
	}
	return New(st, Config{})
}

// FuzzExchangeReceive feeds arbitrary exchange messages to a replica: it
// never panics, and whatever it answers, a fresh replica takes without
// error or panic.
func FuzzExchangeReceive(f *testing.F) {
	r := fuzzReplica()
	f.Add(r.ExchangeStart("b"))
	f.Add(r.linesMessage(xLines, []int{crdt.Bucket("b")}))
	other := New(crdt.New(crdt.Config{Self: "c", Incarnation: 1}), Config{})
	reply, _ := other.ExchangeReceive(plumtree.Exchange{Peer: "a"}, r.linesMessage(xLines, []int{crdt.Bucket("b")}))
	f.Add(reply)
	f.Add([]byte{xBuckets})
	f.Add([]byte{xDelta, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fuzzReplica()
		before := r.State().Summary()
		reply, _ := r.ExchangeReceive(plumtree.Exchange{Peer: "b"}, data)
		if r.Stats().Malformed > 0 && r.State().Summary() != before {
			t.Fatalf("a malformed exchange message changed the state")
		}
		if reply != nil {
			New(crdt.New(crdt.Config{Self: "c", Incarnation: 1}), Config{}).ExchangeReceive(plumtree.Exchange{Peer: "a"}, reply)
		}
	})
}

// FuzzMerge feeds arbitrary ids and payloads to Merge: it never panics,
// and what it refuses as malformed changes nothing.
func FuzzMerge(f *testing.F) {
	op := crdt.Op{Owner: "b", Incarnation: 1, Seq: 2, Kind: crdt.Join, Scope: "s", Group: "g", Member: "y", Count: 1}
	id, payload := Publish(&op)
	f.Add(id, payload)
	peer := crdt.New(crdt.Config{Self: "d", Incarnation: 4})
	peer.LocalJoin("s", "g", "z", 1, nil, 1)
	st, _ := peer.OwnerState("d")
	f.Add(MessageID("d", st.Version), StatePayload(&st))
	ops := []crdt.Op{op, op}
	ops[1].Seq = 3
	batch := Batches(ops, 1<<20)[0]
	f.Add(batch.ID, batch.Payload)
	f.Add(DeathID("b", 1), DeathPayload("b", 1))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, id, payload []byte) {
		r := fuzzReplica()
		before := r.State().Summary()
		r.Merge("b", id, payload)
		if r.Stats().Malformed > 0 && r.State().Summary() != before {
			t.Fatalf("a malformed payload changed the state")
		}
	})
}

// FuzzMessageID: an id either parses or is refused, never panics, and a
// parsed id encodes back to the same bytes.
func FuzzMessageID(f *testing.F) {
	f.Add(MessageID("n00001", crdt.Version{Incarnation: 3, Seq: 9}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, id []byte) {
		owner, v, err := parseMessageID(id)
		if err != nil {
			return
		}
		if again := MessageID(owner, v); string(again) != string(id) {
			t.Fatalf("id %q parsed as %q@%v encodes as %q", id, owner, v, again)
		}
	})
}
