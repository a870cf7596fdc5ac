package sim

import (
	"slices"
	"testing"
	"time"
)

// A payload that reaches a node only as an announcement (its eager copy
// was lost, or a link was pruned while the copy was on its way) is repaired
// by a graft after the lazy flush and the graft timeout, both counted in
// broadcast ticks. On a LAN that repair must cost tens of milliseconds, not
// the hundreds that made a 2,000-join burst or a short partition's heal
// wait for it.
func TestLostCopyIsRepairedWithinLANTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Latency = Constant(250 * time.Microsecond)
	cfg.Loss = 0.05
	s, err := build(cfg, Cluster{Nodes: 50})
	if err != nil {
		t.Fatal(err)
	}
	rng := scenarioRand(1)
	var repaired []time.Duration
	for range 60 {
		id, err := s.Broadcast(rng.IntN(50), Plumtree)
		if err != nil {
			t.Fatal(err)
		}
		s.RunFor(2 * time.Second)
		r := s.Result(id)
		if r.Delivered != r.Eligible {
			t.Fatalf("broadcast %d: %d of %d nodes delivered after 2 s", id, r.Delivered, r.Eligible)
		}
		// Without a loss the last delivery comes a few hops of 250 µs
		// after the send; anything slower waited for a repair.
		if r.Latency > 10*time.Millisecond {
			repaired = append(repaired, r.Latency)
		}
	}
	if len(repaired) < 5 {
		t.Fatalf("only %d of 60 broadcasts needed a repair: the test lost too few copies to measure it", len(repaired))
	}
	slices.Sort(repaired)
	median := repaired[len(repaired)/2]
	t.Logf("%d repaired broadcasts, latency median %v, max %v", len(repaired), median, repaired[len(repaired)-1])
	if median > 100*time.Millisecond {
		t.Errorf("a repaired broadcast's last delivery took %v (median), want under 100 ms on a LAN", median)
	}
}
