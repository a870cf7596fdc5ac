package plumtree

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTreeDepthAfterTheFirstBroadcast: the first broadcast of a root floods
// the overlay and leaves a tree of first arrivals, which with random
// latency follow the fastest paths, not the shortest. The broadcasts after
// it must reach every node within 1.5 times the overlay's depth from the
// root (the shortest paths any tree can have), at the cost of about one
// payload per node.
func TestTreeDepthAfterTheFirstBroadcast(t *testing.T) {
	n, seeds := 1000, []uint64{1, 2, 3}
	if testing.Short() {
		n, seeds = 300, []uint64{1}
	}
	for _, seed := range seeds {
		c, names := randomOverlay(t, Config{}, n, seed)
		source := names[0]
		depth := bfsDepth(c, source)
		step := 0
		c.broadcastAndSettle(t, &step, source, "flood")
		for k := range 3 {
			id := fmt.Sprintf("m%d", k)
			before := c.controlSent()
			copies := c.broadcastAndSettle(t, &step, source, id)
			control := c.controlSent() - before
			ldh := uint32(0)
			for _, name := range names[1:] {
				require.Equal(t, 1, c.handlers[name].delivered[id], "%s %s", name, id)
				ldh = max(ldh, c.handlers[name].rounds[id])
			}
			rmr := float64(copies)/float64(n-1) - 1
			t.Logf("seed %d, %s: LDH %d, depth %d (%.2f), RMR %.3f, grafts and prunes %d", seed, id, ldh, depth, float64(ldh)/float64(depth), rmr, control)
			require.LessOrEqual(t, float64(ldh), 1.5*float64(depth), "seed %d, %s: LDH %d against depth %d", seed, id, ldh, depth)
			require.Less(t, rmr, 0.05, "seed %d, %s", seed, id)
		}
	}
}

// controlSent counts the grafts and prunes sent so far: what reshaping the
// trees costs.
func (c *cluster) controlSent() (sum uint64) {
	for _, p := range c.nodes {
		st := p.Stats()
		sum += st.Sent[MsgGraft] + st.Sent[MsgPrune]
	}
	return sum
}
