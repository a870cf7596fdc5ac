package plumtree

import (
	"fmt"
	"testing"
)

// BenchmarkBroadcast1000 measures one broadcast from a fixed source across
// 1,000 pure cores on a random overlay of degree up to 5 (HyParView's active
// view) with random delays of up to a tick, after the tree has formed. It
// reports the relative message redundancy (rmr), the last delivery hop (ldh)
// against the overlay's depth from the source (depth, the least LDH any
// tree can have), and the time per broadcast across all nodes.
func BenchmarkBroadcast1000(b *testing.B) {
	const n = 1000
	c, names := randomOverlay(b, Config{}, n, 1)
	source := names[0]
	step := 0
	broadcast := func(k int) uint64 {
		return c.broadcastAndSettle(b, &step, source, fmt.Sprintf("m%d", k))
	}
	firstRMR := float64(broadcast(0))/float64(n-1) - 1 // the flood that forms the tree
	for k := 1; k < 5; k++ {
		broadcast(k)
	}
	var copies uint64
	b.ResetTimer()
	for k := range b.N {
		copies += broadcast(5 + k)
	}
	b.StopTimer()
	ldh := uint32(0)
	missing := 0
	for _, name := range names[1:] {
		r, ok := c.handlers[name].rounds[fmt.Sprintf("m%d", 4+b.N)]
		if !ok {
			missing++
		}
		ldh = max(ldh, r)
	}
	b.ReportMetric(float64(copies)/float64(b.N)/float64(n-1)-1, "rmr")
	b.ReportMetric(float64(ldh), "ldh")
	b.ReportMetric(firstRMR, "first-rmr")
	b.ReportMetric(float64(bfsDepth(c, source)), "depth")
	b.ReportMetric(float64(missing), "missing")
}

// bfsDepth is the largest shortest-path distance from source: the least LDH
// any tree can have.
func bfsDepth(c *cluster, source string) int {
	dist := map[string]int{source: 0}
	frontier := []string{source}
	deepest := 0
	for len(frontier) > 0 {
		x := frontier[0]
		frontier = frontier[1:]
		for y := range c.links[x] {
			if _, seen := dist[y]; !seen {
				dist[y] = dist[x] + 1
				deepest = max(deepest, dist[y])
				frontier = append(frontier, y)
			}
		}
	}
	return deepest
}
