package registry

import (
	"fmt"
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/registry/replication"
)

// A burst of joins on another node reaches this one as a few batches
// applied back to back, faster than any reader takes them: a watch on a
// node with the default configuration must still see every join of a
// 2,000-join burst (issue 11's W2) instead of overflowing. With a journal
// of 1,024 changes it overflowed before the reader could run.
func TestAWatchKeepsAWholeBurstFromAnotherNode(t *testing.T) {
	owner := crdt.New(crdt.Config{Self: "joiner", Incarnation: 1})
	ops := make([]crdt.Op, burstJoins)
	for i := range ops {
		ops[i] = owner.LocalJoin(DefaultScope, "/bench/one", fmt.Sprintf("m%d", i), 1, nil, int64(i))
	}
	n, err := New(Config{Name: "observer"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sub, err := n.Default().Subscribe("/bench/*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	rep := replication.New(n.state, replication.Config{})
	for _, bt := range replication.Batches(ops, maxBatchBytes) {
		n.mu.Lock()
		verdict, _ := rep.Merge("joiner", bt.ID, bt.Payload)
		n.mu.Unlock()
		if verdict != plumtree.New {
			t.Fatalf("batch %x: %v", bt.ID, verdict)
		}
	}
	got, err := sub.Next(nil)
	if err != nil {
		t.Fatalf("after the burst, the watch says %v", err)
	}
	if len(got) != burstJoins {
		t.Fatalf("the watch shows %d of %d joins", len(got), burstJoins)
	}
}
