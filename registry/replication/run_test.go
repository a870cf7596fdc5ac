package replication

import (
	"fmt"
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// A burst broadcast as runs leaves a replica exactly where the same ops
// applied one by one do (the chain hashes included, which the digest
// carries), whatever the ops change between them: groups and scopes,
// metadata, counts, leaves. A replica also still takes the batches nodes
// sent before runs.
func TestRunsApplyAsTheirOps(t *testing.T) {
	owner := crdt.New(crdt.Config{Self: "o", Incarnation: 7})
	var ops []crdt.Op
	for i := range 300 {
		scope, group := "s", fmt.Sprintf("/g%d", i%3)
		if i%50 == 0 {
			scope = "t"
		}
		var meta crdt.Meta
		if i%7 == 0 {
			meta = crdt.Meta{"i": fmt.Sprint(i)}
		}
		ops = append(ops, owner.LocalJoin(scope, group, fmt.Sprintf("m%d", i%40), uint32(1+i%3), meta, int64(1000-i)))
		if i%11 == 0 {
			op, err := owner.LocalLeave(scope, group, fmt.Sprintf("m%d", i%40), 1)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, op)
		}
	}
	byOps := crdt.New(crdt.Config{Self: "a", Incarnation: 1})
	for i := range ops {
		if res := byOps.Apply(&ops[i]); res != crdt.Applied {
			t.Fatalf("op %d: %v", i, res)
		}
	}
	for name, batches := range map[string][]Batch{
		"runs":    Batches(ops, 2048),
		"batches": {{ID: MessageID("o", ops[len(ops)-1].Version()), Payload: BatchPayload(ops)}},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "runs" && len(batches) < 2 {
				t.Fatalf("%d ops in %d runs of 2 KB: the size limit cuts nothing", len(ops), len(batches))
			}
			r := New(crdt.New(crdt.Config{Self: "b", Incarnation: 1}), Config{})
			for _, b := range batches {
				if verdict, _ := r.Merge("o", b.ID, b.Payload); verdict != plumtree.New {
					t.Fatalf("batch %x: %v", b.ID, verdict)
				}
			}
			if got, want := r.State().Summary(), byOps.Summary(); got != want {
				t.Errorf("summary %v, want %v as the ops applied one by one", got, want)
			}
			if got, want := r.State().Summary(), owner.Summary(); got != want {
				t.Errorf("summary %v, want the owner's %v", got, want)
			}
		})
	}
}
