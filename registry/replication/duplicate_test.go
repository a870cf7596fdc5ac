package replication

import (
	"fmt"
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// burstBatches are the batches of n joins by owner "o" into one group.
func burstBatches(n int) []Batch {
	o := crdt.New(crdt.Config{Self: "o", Incarnation: 1})
	ops := make([]crdt.Op, n)
	for i := range ops {
		ops[i] = o.LocalJoin("s", "/burst", fmt.Sprintf("m%04d", i), 1, nil, int64(i))
	}
	return Batches(ops, plumtree.MaxPayloadLen/2)
}

// Until an owner's tree is pruned, each eager path brings its own copy of
// a batch. A copy the replica already holds is a duplicate known from its
// id: the replica does not decode its ops again (a decode allocates every
// op's names), and the copy changes nothing.
func TestHeldBatchIsNotDecodedAgain(t *testing.T) {
	batches := burstBatches(500)
	if len(batches) != 1 {
		t.Fatalf("500 ops in %d batches, want 1", len(batches))
	}
	b := batches[0]
	r := New(crdt.New(crdt.Config{Self: "a", Incarnation: 1}), Config{})
	if got, _ := r.Merge("o", b.ID, b.Payload); got != plumtree.New {
		t.Fatalf("first copy: %v, want new", got)
	}
	before := r.State().Summary()
	allocs := testing.AllocsPerRun(20, func() {
		if got, acts := r.Merge("x", b.ID, b.Payload); got != plumtree.Duplicate || len(acts) != 0 {
			t.Fatalf("another copy: %v %v, want a duplicate and no action", got, acts)
		}
	})
	if allocs > 4 {
		t.Errorf("a held batch of 500 ops costs %.0f allocations, want at most 4 (no decode)", allocs)
	}
	if r.State().Summary() != before {
		t.Errorf("a duplicate changed the state")
	}
	if st := r.Stats(); st.Duplicates != 21 || st.Applied != 1 {
		t.Errorf("stats %+v, want 21 duplicates and 1 applied", st)
	}
}

// What the id alone cannot vouch for is still decoded: a batch the
// replica holds only the start of applies the rest, and a batch of an
// owner the replica holds at a newer incarnation is refused, not counted a
// duplicate.
func TestBatchNotWhollyHeldIsDecoded(t *testing.T) {
	o := crdt.New(crdt.Config{Self: "o", Incarnation: 1})
	ops := make([]crdt.Op, 1000)
	for i := range ops {
		ops[i] = o.LocalJoin("s", "/burst", fmt.Sprintf("m%04d", i), 1, nil, int64(i))
	}
	r := New(crdt.New(crdt.Config{Self: "a", Incarnation: 1}), Config{})
	for _, b := range append(Batches(ops[:700], plumtree.MaxPayloadLen/2), Batches(ops, plumtree.MaxPayloadLen/2)...) {
		if got, _ := r.Merge("o", b.ID, b.Payload); got != plumtree.New {
			t.Fatalf("batch %x: %v, want new", b.ID, got)
		}
	}
	if v, _ := r.State().Owner("o"); v.Seq != 1000 {
		t.Fatalf("o held at %v, want seq 1000", v)
	}
	restarted := crdt.New(crdt.Config{Self: "o", Incarnation: 2})
	op := restarted.LocalJoin("s", "/burst", "new", 1, nil, 1)
	id, payload := Publish(&op)
	if got, _ := r.Merge("o", id, payload); got != plumtree.New {
		t.Fatalf("first op of incarnation 2: %v, want new", got)
	}
	refused := r.Stats().Refused
	old := Batches(ops, plumtree.MaxPayloadLen/2)[0]
	if got, _ := r.Merge("x", old.ID, old.Payload); got != plumtree.Duplicate {
		t.Fatalf("a batch of incarnation 1: %v, want a duplicate verdict", got)
	}
	if r.Stats().Refused != refused+1 {
		t.Errorf("a batch of a replaced incarnation was not refused: %+v", r.Stats())
	}
}

// Each gap pulls its owner at once: a gap that opens after the previous
// one closed does not wait out the previous pull's PullTicks. The batches
// of one burst can arrive out of order more than once within a second; a
// held batch is not passed on and keeps only the CRDT's PendingLimit of
// its ops, so a second gap left without a pull waited for a graft.
func TestEachGapPullsAtOnce(t *testing.T) {
	o := crdt.New(crdt.Config{Self: "o", Incarnation: 1})
	ops := make([]crdt.Op, 4)
	for i := range ops {
		ops[i] = o.LocalJoin("s", "/g", fmt.Sprintf("m%d", i), 1, nil, int64(i))
	}
	r := New(crdt.New(crdt.Config{Self: "a", Incarnation: 1}), Config{})
	merge := func(op *crdt.Op) (plumtree.Verdict, []plumtree.Action) {
		id, payload := Publish(op)
		return r.Merge("b", id, payload)
	}
	pulls := func(acts []plumtree.Action) int {
		n := 0
		for _, a := range acts {
			if a.Kind == plumtree.ActExchange && a.Peer == "b" {
				n++
			}
		}
		return n
	}
	if v, acts := merge(&ops[1]); v != plumtree.Held || pulls(acts) != 1 {
		t.Fatalf("op 2 ahead of op 1: %v, %d pulls; want held and one pull", v, pulls(acts))
	}
	if v, acts := merge(&ops[1]); v != plumtree.Held || pulls(acts) != 0 {
		t.Fatalf("op 2 again, same gap: %v, %d pulls; want held and no second pull", v, pulls(acts))
	}
	if v, _ := merge(&ops[0]); v != plumtree.New {
		t.Fatalf("op 1: %v, want new", v)
	}
	if v, acts := merge(&ops[3]); v != plumtree.Held || pulls(acts) != 1 {
		t.Fatalf("op 4 ahead of op 3, a new gap within PullTicks: %v, %d pulls; want held and one pull", v, pulls(acts))
	}
}
