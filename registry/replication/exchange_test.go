package replication

import (
	"fmt"
	"testing"

	"github.com/cpggo/cpg/crdt"
)

// ownerStates returns the states of n owners holding one member each.
func ownerStates(t testing.TB, n int) []crdt.OwnerState {
	out := make([]crdt.OwnerState, n)
	for k := range out {
		name := fmt.Sprintf("owner-%05d", k)
		st := crdt.New(crdt.Config{Self: name, Incarnation: 1})
		st.LocalJoin("s", "/svc/g", name+"/m", 1, nil, int64(k))
		os, ok := st.OwnerState(name)
		if !ok {
			t.Fatalf("no state for %s", name)
		}
		out[k] = os
	}
	return out
}

// exchangeBytes makes two linked replicas that know the given owners, b
// lacking the first behind of them, and returns the exchange bytes of one
// exchange a opens with b, and the part of them that the delta itself takes.
func exchangeBytes(t testing.TB, owners []crdt.OwnerState, behind int) (total, delta int) {
	c := newCluster(t, longPeriods, "a", "b")
	c.link("a", "b")
	c.deliverAll()
	for i := range owners {
		for _, n := range []string{"a", "b"} {
			st := owners[i]
			if n == "b" && i < behind {
				continue
			}
			if got := c.nodes[n].st.MergeOwner(&st); got != crdt.Applied {
				t.Fatalf("%s: MergeOwner(%s) = %v", n, st.Owner, got)
			}
		}
	}
	for i := range behind {
		d := crdt.Delta{Owners: []crdt.OwnerState{owners[i]}}
		delta += len(crdt.AppendDelta(nil, &d))
	}
	c.exchangeBytes = 0
	if err := c.nodes["a"].pt.StartExchange(Topic, "b", nil); err != nil {
		t.Fatal(err)
	}
	c.collect("a")
	c.deliverAll()
	if !c.converged() {
		t.Fatalf("not converged after the exchange")
	}
	return c.exchangeBytes, delta
}

// Anti-entropy between converged replicas costs a fingerprint, whatever
// the number of owners; one owner behind costs the bucket hashes and one
// bucket's lines beside the delta. (Before hashed digests, every exchange
// carried every owner's line: hundreds of kilobytes at 10,000 owners.)
func TestExchangeCostIsBoundedByTheDifference(t *testing.T) {
	owners := ownerStates(t, 10_000)
	if total, _ := exchangeBytes(t, owners, 0); total >= 1024 {
		t.Errorf("converged exchange at 10,000 owners: %d bytes, want under 1 KB", total)
	}
	total, delta := exchangeBytes(t, owners, 1)
	if total-delta >= 4096 {
		t.Errorf("one owner behind at 10,000 owners: %d bytes beside its %d-byte delta, want under 4 KB", total-delta, delta)
	}
}

// BenchmarkExchangeBytes reports the bytes one exchange puts on the wire,
// converged and with one owner behind, for 100, 1,000 and 10,000 owners.
func BenchmarkExchangeBytes(b *testing.B) {
	for _, n := range []int{100, 1000, 10_000} {
		for _, behind := range []int{0, 1} {
			b.Run(fmt.Sprintf("owners=%d/behind=%d", n, behind), func(b *testing.B) {
				owners := ownerStates(b, n)
				var total, delta int
				for range b.N {
					total, delta = exchangeBytes(b, owners, behind)
				}
				b.ReportMetric(float64(total), "bytes/exchange")
				b.ReportMetric(float64(total-delta), "bytes-beside-delta")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
