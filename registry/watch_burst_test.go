package registry

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/registry/replication"
	"github.com/stretchr/testify/require"
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

// The changes of a batch received from a peer reach watchers together,
// once the whole batch is applied, all stamped with that moment: the
// clock is read once per batch, not once per change.
func TestABatchFromAPeerIsJournaledAtItsEndWithOneStamp(t *testing.T) {
	owner := crdt.New(crdt.Config{Self: "joiner", Incarnation: 1})
	var ops []crdt.Op
	for i := range 3 {
		ops = append(ops, owner.LocalJoin(DefaultScope, "/g", fmt.Sprintf("m%d", i), 1, nil, int64(i)))
	}
	batches := replication.Batches(ops, maxBatchBytes)
	require.Len(t, batches, 1)

	var reads atomic.Int64
	n, err := New(Config{Name: "observer", Now: func() time.Time {
		return time.Unix(1000+reads.Add(1), 0)
	}})
	require.NoError(t, err)
	defer n.Close()
	sub, err := n.Default().Subscribe("/g", SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	rep := replication.New(n.state, replication.Config{})

	before := reads.Load()
	n.mu.Lock()
	n.holdRecords()
	verdict, _ := rep.Merge("joiner", batches[0].ID, batches[0].Payload)
	if woken(sub.Ready()) {
		t.Error("a watcher was woken before the batch was wholly applied")
	}
	n.releaseRecords()
	n.mu.Unlock()
	require.Equal(t, plumtree.New, verdict)
	require.Equal(t, int64(1), reads.Load()-before, "clock reads for one batch")

	recs, err := sub.Next(nil)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	for _, r := range recs {
		require.Equal(t, time.Unix(1000+before+1, 0), r.Applied, "%s's stamp", r.Member.ID)
	}
}
