package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
)

// A change that comes alone is sent by the goroutine that made it, with
// no wake of the broadcast's goroutine, and reaches the other nodes; a
// burst that follows it is left to the broadcast's goroutine, which sends
// what accumulated together (its callers send only shares that goroutine
// left waiting, see TestABurstLeavesInSharesWhileItIsMade), so it still
// travels as a few batches.
func TestALoneChangeIsSentByItsCallerAndABurstIsBatched(t *testing.T) {
	joiner, other := linkedPair(t)
	drains := func() uint64 {
		st, err := joiner.cluster.bcast.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.CallerDrains
	}
	time.Sleep(2 * loneQuiet)
	before := drains()
	if err := joiner.Default().Join("/lone", "m", nil); err != nil {
		t.Fatal(err)
	}
	if got := drains() - before; got != 1 {
		t.Fatalf("a lone join was sent by its caller %d times, want once", got)
	}
	waitUntil(t, 10*time.Second, "the lone join reaches the other node", func() bool {
		g, err := other.Default().Members("/lone")
		return err == nil && len(g.Members) == 1
	})

	time.Sleep(2 * loneQuiet)
	st, _ := joiner.cluster.bcast.Stats()
	before, sentBefore := st.CallerDrains, st.Sent[plumtree.MsgGossip]
	const burst = 2000
	for i := range burst {
		if err := joiner.Default().Join("/burst", fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "the burst reaches the other node", func() bool {
		g, err := other.Default().Members("/burst")
		return err == nil && len(g.Members) == burst
	})
	st, _ = joiner.cluster.bcast.Stats()
	callers, batches := st.CallerDrains-before, st.Sent[plumtree.MsgGossip]-sentBefore
	t.Logf("a burst of %d joins: %d sent by their caller, %d batches", burst, callers, batches)
	// The first join, one per share the broadcast's goroutine left, and
	// any join that found the outbox untaken for loneQuiet (a pause of the
	// loop on a busy machine): a few, not a burst's worth.
	if callers < 1 || callers > 2*(1+burst/burstShare) {
		t.Errorf("%d of the burst's joins were sent by their caller, want the first and a few others", callers)
	}
	if batches > burst/10 {
		t.Errorf("the burst travelled as %d batches, want a few", batches)
	}
}

// linkedPair starts two cluster nodes and returns once they are linked.
func linkedPair(t *testing.T) (joiner, other *Node) {
	t.Helper()
	nodes := startClusterNodes(t, 2)
	joiner, other = nodes[0], nodes[1]
	waitUntil(t, 10*time.Second, "the nodes linked", func() bool { return len(joiner.Overlay().Active) == 1 })
	return joiner, other
}
