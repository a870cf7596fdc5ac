package registry

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
)

// A burst leaves in shares while it is made, even when the broadcast's
// goroutine, woken, does not get to run: with one P the joining goroutine
// keeps it until the burst is done, as the busy cores of a small machine
// did to a 2,000-join burst, which then left in one piece once the joins
// were done while the other nodes idled. The caller whose change leaves
// burstShare ops queued sends them itself.
func TestABurstLeavesInSharesWhileItIsMade(t *testing.T) {
	joiner, other := linkedPair(t)
	gossipSent := func() uint64 {
		st, err := joiner.cluster.bcast.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Sent[plumtree.MsgGossip]
	}
	members := make([]string, 2000)
	for i := range members {
		members[i] = fmt.Sprintf("m%d", i)
	}
	time.Sleep(2 * loneQuiet)
	before := gossipSent()

	prev := runtime.GOMAXPROCS(1)
	restore := sync.OnceFunc(func() { runtime.GOMAXPROCS(prev) })
	defer restore()
	mostQueued := 0
	for _, m := range members {
		if err := joiner.Default().Join("/burst", m, nil); err != nil {
			t.Fatal(err)
		}
		mostQueued = max(mostQueued, joiner.cluster.queuedOps())
	}
	sent := gossipSent() - before
	restore()

	t.Logf("%d joins left as %d batches while they were made; at most %d waited in the queue", len(members), sent, mostQueued)
	if mostQueued >= 2*burstShare {
		t.Errorf("%d joins waited in the queue after a join returned, want under %d", mostQueued, 2*burstShare)
	}
	waitUntil(t, 10*time.Second, "the burst reaches the other node", func() bool {
		g, err := other.Default().Members("/burst")
		return err == nil && len(g.Members) == len(members)
	})
}

// queuedOps is how many ops wait in the queue for the broadcast.
func (c *cluster) queuedOps() int {
	c.queueMu.Lock()
	defer c.queueMu.Unlock()
	return len(c.ops)
}
