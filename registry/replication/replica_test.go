package replication

import (
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
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
