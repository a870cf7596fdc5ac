package replication

import (
	"fmt"
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// What a replica learns by exchange goes on down the owner's tree at once:
// here the owner's broadcasts never reach a, a learns them by exchange, and
// b and c (beyond a, no exchange scheduled) hold them before any tick. With
// the exchange a dead end, b and c would wait for their own exchanges.
func TestExchangeResultIsPassedOnTheOwnersTree(t *testing.T) {
	c := newCluster(t, longPeriods, "o", "a", "b", "c")
	c.link("o", "a")
	c.link("a", "b")
	c.link("b", "c")
	c.deliverAll()
	c.drop = func(from, to string, m *plumtree.Message) bool {
		return from == "o" && m.Type != plumtree.MsgExchange
	}
	for i := range 3 {
		c.join("o", "g", string(rune('x'+i)))
	}
	c.deliverAll()
	if v := c.version("c", "o"); v.Seq != 0 {
		t.Fatalf("c holds o at %v before any exchange: the drop is not working", v)
	}
	if err := c.nodes["a"].pt.StartExchange(Topic, "o", nil); err != nil {
		t.Fatal(err)
	}
	c.collect("a")
	c.deliverAll()
	for _, n := range []string{"a", "b", "c"} {
		if v := c.version(n, "o"); v.Seq != 3 {
			t.Errorf("%s holds o at %v, want seq 3", n, v)
		}
	}
	if got := c.nodes["a"].rep.Stats().Passed; got != 1 {
		t.Errorf("a passed on %d owner states, want 1", got)
	}
}

// An op that arrives ahead of a gap pulls its owner from the sender at
// once, one pull for the whole gap, and the replica catches up without
// waiting for an exchange period.
func TestGapPullsTheOwnerAtOnce(t *testing.T) {
	c := newCluster(t, longPeriods, "o", "a")
	c.link("o", "a")
	c.deliverAll()
	lost := false
	c.drop = func(from, to string, m *plumtree.Message) bool {
		if m.Type == plumtree.MsgGossip && !lost {
			lost = true
			return true
		}
		return false
	}
	for i := range 4 {
		c.join("o", "g", string(rune('w'+i)))
	}
	c.deliverAll()
	if v := c.version("a", "o"); v.Seq != 4 {
		t.Fatalf("a holds o at %v after the gap, want seq 4 without waiting", v)
	}
	st := c.nodes["a"].rep.Stats()
	if st.Pulls != 1 {
		t.Errorf("%d pulls for one gap, want 1", st.Pulls)
	}
	if st.Buffered == 0 {
		t.Errorf("no op was buffered: the test did not make a gap")
	}
}

// Malformed payloads and payloads whose id names another op change
// nothing and are not forwarded.
func TestMalformedPayloadChangesNothing(t *testing.T) {
	c := newCluster(t, longPeriods, "a")
	rep := c.nodes["a"].rep
	before := rep.State().Summary()
	for _, tc := range []struct{ id, payload []byte }{
		{[]byte("x"), []byte{payloadOp, 1, 2}},
		{MessageID("o", v(1, 1)), nil},
		{MessageID("o", v(1, 1)), []byte{99}},
	} {
		if got, acts := rep.Merge("b", tc.id, tc.payload); got != plumtree.Duplicate || len(acts) != 0 {
			t.Errorf("Merge(%q, %q) = %v %v, want a duplicate and no action", tc.id, tc.payload, got, acts)
		}
	}
	if rep.State().Summary() != before {
		t.Errorf("state changed")
	}
	if rep.Stats().Malformed != 3 {
		t.Errorf("malformed = %d, want 3", rep.Stats().Malformed)
	}
}

// A burst of joins on one owner travels as a few batches, not one
// broadcast per join, and every replica applies all of it.
func TestBurstTravelsAsFewBatches(t *testing.T) {
	c := newCluster(t, longPeriods, "o", "a", "b")
	c.link("o", "a")
	c.link("a", "b")
	c.deliverAll()
	gossip := 0
	c.drop = func(_, _ string, m *plumtree.Message) bool {
		if m.Type == plumtree.MsgGossip {
			gossip++
		}
		return false
	}
	o := c.nodes["o"]
	ops := make([]crdt.Op, 2000)
	for i := range ops {
		ops[i] = o.st.LocalJoin("s", "/burst", fmt.Sprintf("m%04d", i), 1, nil, int64(i))
	}
	batches := Batches(ops, plumtree.MaxPayloadLen/2)
	if len(batches) != 2 {
		t.Fatalf("2,000 ops in %d batches, want 2 (at most %d ops each)", len(batches), MaxBatchOps)
	}
	for _, b := range batches {
		if err := o.pt.Broadcast(Topic, b.ID, b.Payload); err != nil {
			t.Fatal(err)
		}
	}
	c.collect("o")
	c.deliverAll()
	for _, n := range []string{"a", "b"} {
		if v := c.version(n, "o"); v.Seq != 2000 {
			t.Errorf("%s holds o at %v, want seq 2000", n, v)
		}
	}
	if gossip != 4 {
		t.Errorf("%d payload messages for two batches over two hops, want 4", gossip)
	}
}

// A tombstone broadcast by the node that saw an owner's process go purges
// that owner's members on every replica, and the accused owner, if alive,
// refutes with a new incarnation announced as one state, which brings its
// members back everywhere.
func TestDeathPurgesAndTheAccusedRefutes(t *testing.T) {
	c := newCluster(t, longPeriods, "o", "a", "b")
	c.link("o", "a")
	c.link("a", "b")
	c.deliverAll()
	c.join("o", "g", "m1")
	c.join("o", "g", "m2")
	c.deliverAll()
	inc := c.version("b", "o").Incarnation

	// o is cut off: b learns of its death from a.
	c.drop = func(from, to string, _ *plumtree.Message) bool { return from == "o" || to == "o" }
	id, payload, ok := c.nodes["a"].rep.Purge("o", inc)
	if !ok {
		t.Fatal("a already held o's tombstone")
	}
	if err := c.nodes["a"].pt.Broadcast(Topic, id, payload); err != nil {
		t.Fatal(err)
	}
	c.collect("a")
	c.deliverAll()
	for _, n := range []string{"a", "b"} {
		if _, ok := c.nodes[n].st.Owner("o"); ok {
			t.Errorf("%s still holds o after its death was broadcast", n)
		}
		if c.nodes[n].st.Group("s", "g") != nil {
			t.Errorf("%s still lists o's members", n)
		}
	}

	// o was alive after all: the next exchange tells it, and it refutes.
	c.drop = nil
	if err := c.nodes["a"].pt.StartExchange(Topic, "o", nil); err != nil {
		t.Fatal(err)
	}
	c.collect("a")
	c.deliverAll()
	if got := c.nodes["o"].rep.Stats().Refutes; got != 1 {
		t.Fatalf("o refuted %d times, want 1", got)
	}
	for _, n := range []string{"a", "b"} {
		v := c.version(n, "o")
		if v.Incarnation <= inc {
			t.Errorf("%s holds o at %v, want an incarnation above %d", n, v, inc)
		}
		if g := c.nodes[n].st.Group("s", "g"); g == nil || g.Len() != 2 {
			t.Errorf("%s does not list o's two members again", n)
		}
	}
}

// A state that answers a graft for an older op moves the replica past
// that op; it is passed on under the id of its own version too, or the
// replica's lazy neighbours, which hold the older op, would be told only of
// that one and never learn the newer version exists.
func TestStateNewerThanItsIDIsAnnouncedUnderItsOwnID(t *testing.T) {
	owner := crdt.New(crdt.Config{Self: "o", Incarnation: 1})
	for i := range 3 {
		owner.LocalJoin("s", "g", fmt.Sprint(i), 1, nil, 1)
	}
	st, _ := owner.OwnerState("o")
	r := New(crdt.New(crdt.Config{Self: "a", Incarnation: 1}), Config{})
	verdict, acts := r.Merge("b", MessageID("o", v(1, 1)), StatePayload(&st))
	if verdict != plumtree.New {
		t.Fatalf("verdict %v, want new", verdict)
	}
	if len(acts) != 1 || acts[0].Kind != plumtree.ActBroadcast || string(acts[0].ID) != string(MessageID("o", v(1, 3))) || acts[0].Root != "o" {
		t.Fatalf("actions %+v, want one broadcast of o's state under the id of 1.3", acts)
	}
	if verdict, acts := r.Merge("c", MessageID("o", v(1, 3)), StatePayload(&st)); verdict != plumtree.Duplicate || len(acts) != 0 {
		t.Errorf("the same state again: %v %+v, want a duplicate and no action", verdict, acts)
	}
}

// A pull is an exchange, and its messages can be lost like any other: the
// replica pulls again, every PullTicks, until the gap is filled, instead
// of waiting for an exchange period or for another op of that owner.
func TestLostPullIsRetried(t *testing.T) {
	c := newCluster(t, longPeriods, "o", "a")
	c.link("o", "a")
	c.deliverAll()
	lostOp, lostPull := false, false
	c.drop = func(from, _ string, m *plumtree.Message) bool {
		switch {
		case m.Type == plumtree.MsgGossip && !lostOp:
			lostOp = true
			return true
		case m.Type == plumtree.MsgExchange && from == "a" && !lostPull:
			lostPull = true
			return true
		}
		return false
	}
	for i := range 3 {
		c.join("o", "g", fmt.Sprint(i))
	}
	c.deliverAll()
	if !lostPull {
		t.Fatal("no pull was sent: the test did not make a gap")
	}
	if v := c.version("a", "o"); v.Seq == 3 {
		t.Fatal("a caught up although its pull was lost")
	}
	c.settle(c.nodes["a"].rep.cfg.PullTicks + 2)
	if v := c.version("a", "o"); v.Seq != 3 {
		t.Fatalf("a holds o at %v after the retry period, want seq 3", v)
	}
	if got := c.nodes["a"].rep.Stats().Pulls; got != 2 {
		t.Errorf("%d pulls, want 2 (the lost one and its retry)", got)
	}
}
