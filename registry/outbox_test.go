package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/membership"
)

// A burst of joins holds the node's lock nearly all the time, one join
// after another. The changes already made must leave meanwhile, not wait
// for the lock between two joins: here the lock stays held, as by a join
// that never ends, and the change queued before still reaches the other
// node. (The broadcast's ticks, which take the lock, are spaced out of
// the test's way.)
func TestQueuedChangesLeaveWhileTheNodeLockIsHeld(t *testing.T) {
	nodes := make([]*Node, 0, 2)
	for i := range 2 {
		cc := &ClusterConfig{
			Key:        clusterKey,
			Membership: membership.NodeConfig{Gossip: membership.LoopbackGossipConfig()},
			Broadcast:  broadcast.Options{TickInterval: time.Hour},
		}
		if i > 0 {
			cc.Join = []string{nodes[0].GossipAddr()}
		}
		n, err := New(Config{Name: fmt.Sprintf("node-%d", i), Cluster: cc})
		if err != nil {
			t.Fatalf("start node %d: %v", i, err)
		}
		// Without ticks a graceful leave would wait hours for its tombstone
		// to go: leave at once.
		t.Cleanup(func() { n.stopCluster(false); n.Close() })
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	waitUntil(t, 10*time.Second, "the nodes are linked", func() bool {
		return len(a.Overlay().Active) == 1 && len(b.Overlay().Active) == 1
	})

	a.mu.Lock()
	op := a.state.LocalJoin(DefaultScope, "/busy", "m", 1, nil, 1)
	a.publish(&op)
	arrived := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if b.appliedSeq(a.name) >= op.Seq {
			arrived = true
			break
		}
	}
	a.mu.Unlock()
	if !arrived {
		t.Fatalf("a change queued while the node's lock was held did not leave within 5 s")
	}
}
