package plumtree

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkBroadcast1000 measures one broadcast from a fixed source across
// 1,000 pure cores on a random overlay of degree up to 5 (HyParView's active
// view) with random delays of up to a tick, after the tree has formed. It
// reports the relative message redundancy (rmr), the last delivery hop (ldh)
// against the overlay's depth from the source (depth, the least LDH any
// tree can have), and the time per broadcast across all nodes.
func BenchmarkBroadcast1000(b *testing.B) {
	const n, degree, stepsPerTick = 1000, 5, 10
	rng := rand.New(rand.NewPCG(1, 2))
	c := newCluster(b, Config{})
	c.latency = func() int { return 1 + rng.IntN(stepsPerTick) }
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%04d", i)
		c.add(names[i])
		c.handlers[names[i]].log = nil
	}
	deg := map[string]int{}
	link := func(x, y string) bool {
		if x == y || c.links[x][y] || deg[x] >= degree || deg[y] >= degree {
			return false
		}
		c.link(x, y)
		deg[x]++
		deg[y]++
		return true
	}
	for i := 1; i < n; i++ {
		for !link(names[i], names[rng.IntN(i)]) {
		}
	}
	for range 3 * n {
		link(names[rng.IntN(n)], names[rng.IntN(n)])
	}
	c.dropExchanges()
	source := names[0]
	step := 0
	broadcast := func(k int) {
		id := fmt.Sprintf("m%d", k)
		c.handlers[source].have[id] = nil
		if err := c.nodes[source].Broadcast(c.topic, []byte(id), nil); err != nil {
			b.Fatal(err)
		}
		c.collect(source, step)
		// Run until the network is quiet and the graft timers have had
		// their time.
		for quiet := 0; quiet < 5*stepsPerTick; quiet++ {
			if len(c.queue) > 0 {
				quiet = 0
			}
			step++
			c.deliverDue(step)
			if step%stepsPerTick == 0 {
				for _, name := range names {
					c.nodes[name].Tick()
					c.collect(name, step)
				}
			}
		}
	}
	gossip := func() (sum uint64) {
		for _, p := range c.nodes {
			sum += p.Stats().Received[MsgGossip]
		}
		return sum
	}
	broadcast(0) // the flood that forms the tree
	firstRMR := float64(gossip())/float64(n-1) - 1
	for k := 1; k < 5; k++ {
		broadcast(k)
	}
	before := gossip()
	b.ResetTimer()
	for k := range b.N {
		broadcast(5 + k)
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
	b.ReportMetric(float64(gossip()-before)/float64(b.N)/float64(n-1)-1, "rmr")
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
