package replication

import (
	"fmt"
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// BenchmarkMergeBatchOfLargeOwner merges, batch after batch, the ops of an
// owner that already holds many entries: what a replica does while a node
// with a big registry keeps joining. The cost of a batch must be its own
// ops', not the owner's whole state's.
func BenchmarkMergeBatchOfLargeOwner(b *testing.B) {
	for _, held := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", held), func(b *testing.B) {
			owner := crdt.New(crdt.Config{Self: "owner", Incarnation: 1})
			var ops []crdt.Op
			for i := range held + 64*b.N {
				ops = append(ops, owner.LocalJoin("s", fmt.Sprintf("/g/%d", i%100), fmt.Sprintf("m%d", i), 1, nil, 1))
			}
			r := New(crdt.New(crdt.Config{Self: "replica", Incarnation: 1}), Config{})
			for _, bt := range Batches(ops[:held], 1<<20) {
				r.Merge("owner", bt.ID, bt.Payload)
			}
			var batches []Batch
			for i := range b.N {
				batches = append(batches, Batches(ops[held+64*i:held+64*(i+1)], 1<<20)...)
			}
			b.ResetTimer()
			for i := range b.N {
				// One batch of 64 ops per round.
				if v, _ := r.Merge("owner", batches[i].ID, batches[i].Payload); v != plumtree.New {
					b.Fatalf("batch %d: %v", i, v)
				}
			}
		})
	}
}
