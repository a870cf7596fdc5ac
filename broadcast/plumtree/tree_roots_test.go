package plumtree

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomOverlay is a cluster of n cores on a connected random overlay of
// degree up to 5 (HyParView's active view), with message delays of 1 to
// stepsPerTick steps.
func randomOverlay(tb testing.TB, cfg Config, n int, seed uint64) (*cluster, []string) {
	const degree = 5
	rng := rand.New(rand.NewPCG(seed, 2))
	c := newCluster(tb, cfg)
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
	return c, names
}

const stepsPerTick = 10

// broadcastAndSettle broadcasts id from source and runs the cluster until
// the network is quiet and the graft timers have had their time; it
// returns the payload copies received.
func (c *cluster) broadcastAndSettle(tb testing.TB, step *int, source, id string) uint64 {
	before := c.payloadsReceived()
	c.handlers[source].have[id] = nil
	require.NoError(tb, c.nodes[source].Broadcast(c.topic, []byte(id), nil))
	c.collect(source, *step)
	for quiet := 0; quiet < 5*stepsPerTick; quiet++ {
		if len(c.queue) > 0 {
			quiet = 0
		}
		*step++
		c.deliverDue(*step)
		if *step%stepsPerTick == 0 {
			for _, name := range c.names() {
				c.nodes[name].Tick()
				c.collect(name, *step)
			}
		}
	}
	return c.payloadsReceived() - before
}

func (c *cluster) payloadsReceived() (sum uint64) {
	for _, p := range c.nodes {
		sum += p.Stats().Received[MsgGossip]
	}
	return sum
}

// TestManyRootsOverFewTreesKeepTheirPrunedLinks: with more roots than
// Config.MaxTrees, every broadcast finds its tree evicted. A tree made anew
// all-eager floods the overlay (RMR about 3 on this overlay, where the
// first broadcast of a root costs 4 copies per node); one made from the
// links an evicted tree had pruned costs about one copy per node, as a
// single root's broadcasts do.
func TestManyRootsOverFewTreesKeepTheirPrunedLinks(t *testing.T) {
	const n, roots, rounds = 100, 40, 3
	rmr := func(copies uint64, broadcasts int) float64 {
		return float64(copies)/float64(broadcasts)/float64(n-1) - 1
	}

	single, names := randomOverlay(t, Config{}, n, 1)
	step := 0
	single.broadcastAndSettle(t, &step, names[0], "warm")
	var copies uint64
	for k := range roots {
		copies += single.broadcastAndSettle(t, &step, names[0], fmt.Sprintf("m%d", k))
	}
	singleRMR := rmr(copies, roots)

	many, names := randomOverlay(t, Config{MaxTrees: 8}, n, 1)
	step = 0
	copies = 0
	for r := range rounds {
		for k := range roots {
			c := many.broadcastAndSettle(t, &step, names[k], fmt.Sprintf("r%dm%d", r, k))
			if r > 0 {
				copies += c
			}
		}
	}
	manyRMR := rmr(copies, (rounds-1)*roots)
	t.Logf("RMR: one root %.3f; %d roots over %d trees %.3f", singleRMR, roots, 8, manyRMR)
	for _, name := range names {
		for r := range rounds {
			for k := range roots {
				require.Equal(t, 1, many.handlers[name].delivered[fmt.Sprintf("r%dm%d", r, k)]+boolInt(name == names[k]), "%s r%dm%d", name, r, k)
			}
		}
	}
	require.Less(t, singleRMR, 0.05, "one root's tree prunes to about one copy per node")
	require.Less(t, manyRMR, singleRMR+0.25, "evicted trees must not make every broadcast flood")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// treesOfRoots makes a core with five neighbours keep the trees of roots
// roots, each pruned once (a lazy link), as a registry node of a cluster of
// that many owners does.
func treesOfRoots(tb testing.TB, roots int) *Protocol {
	p, err := NewProtocol(Config{Self: "self"})
	require.NoError(tb, err)
	for i := range 5 {
		p.NeighborUp(fmt.Sprintf("10.0.0.%d:7946", i))
	}
	for i := range roots {
		root := fmt.Sprintf("10.1.%d.%d:7946", i/256, i%256)
		require.NoError(tb, p.Step("10.0.0.1:7946", Message{Type: MsgPrune, Root: root}))
	}
	p.Ready()
	return p
}

// heapPerRoot measures the heap that the trees of roots roots take, per
// root (their names included).
func heapPerRoot(tb testing.TB, roots int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := treesOfRoots(tb, roots)
	runtime.GC()
	runtime.ReadMemStats(&after)
	require.Equal(tb, roots, len(p.Roots()), "every root keeps its tree")
	runtime.KeepAlive(p)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(roots)
}

// TestTreesOfTenThousandRootsAreSmall: every owner of a 10,000-owner
// registry is a root, and every node keeps all their trees in well under
// a kilobyte each.
func TestTreesOfTenThousandRootsAreSmall(t *testing.T) {
	const roots = 10_000
	perRoot := heapPerRoot(t, roots)
	t.Logf("%d roots: %.0f bytes of heap per root", roots, perRoot)
	require.Less(t, perRoot, 200.0)

	p := treesOfRoots(t, roots)
	eager, lazy := p.Peers("10.1.0.7:7946")
	require.Equal(t, []string{"10.0.0.0:7946", "10.0.0.2:7946", "10.0.0.3:7946", "10.0.0.4:7946"}, eager)
	require.Equal(t, []string{"10.0.0.1:7946"}, lazy)
}

// BenchmarkTreesOfTenThousandRoots reports the heap per root (B/root) of
// the trees of 10,000 roots, and the time to make them.
func BenchmarkTreesOfTenThousandRoots(b *testing.B) {
	const roots = 10_000
	var perRoot float64
	for b.Loop() {
		perRoot = heapPerRoot(b, roots)
	}
	b.ReportMetric(perRoot, "B/root")
}
