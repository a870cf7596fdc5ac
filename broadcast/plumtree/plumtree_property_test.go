package plumtree

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPropertyExactlyOnceUnderCrashes runs broadcasts on random connected
// overlays of 20-100 nodes with random message delays, while random nodes
// crash (their neighbours notice after a random delay). Every node alive at
// the end and still connected to the source must deliver every message
// exactly once.
func TestPropertyExactlyOnceUnderCrashes(t *testing.T) {
	cases := 60
	if testing.Short() {
		cases = 10
	}
	for seed := uint64(1); seed <= uint64(cases); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runCrashSchedule(t, seed) })
	}
}

func runCrashSchedule(t *testing.T, seed uint64) {
	const (
		stepsPerTick  = 10   // message delays are 1..10 steps, so up to a tick
		maxDegree     = 6    // about HyParView's active view
		messages      = 20   // broadcast one every broadcastEvery steps
		broadcastEach = 15   //
		crashUntil    = 400  // crashes (and their detection) stop well before the end
		maxDetection  = 30   // steps until neighbours see NeighborDown
		endStep       = 1500 // 150 ticks: ample for grafts to finish
	)
	rng := rand.New(rand.NewPCG(seed, 0xb40adca57))
	n := 20 + rng.IntN(81)
	c := newCluster(t, Config{})
	c.latency = func() int { return 1 + rng.IntN(stepsPerTick) }
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%03d", i)
		c.add(names[i])
		c.handlers[names[i]].log = nil
	}
	degree := map[string]int{}
	tryLink := func(a, b string) bool {
		if a == b || c.links[a][b] || degree[a] >= maxDegree || degree[b] >= maxDegree {
			return false
		}
		c.link(a, b)
		degree[a]++
		degree[b]++
		return true
	}
	// A random tree makes the overlay connected; extra edges add the lazy
	// links that repair relies on.
	for i := 1; i < n; i++ {
		for !tryLink(names[i], names[rng.IntN(i)]) {
		}
	}
	for range n {
		tryLink(names[rng.IntN(n)], names[rng.IntN(n)])
	}
	c.dropExchanges()

	source := names[0]
	crashAt := map[int][]string{}
	for _, i := range rng.Perm(n - 1)[:rng.IntN(n/5+1)] {
		s := rng.IntN(crashUntil)
		crashAt[s] = append(crashAt[s], names[i+1])
	}
	type detection struct{ dead, peer string }
	detectAt := map[int][]detection{}

	var ids []string
	for step := 0; step <= endStep; step++ {
		if step%broadcastEach == 0 && len(ids) < messages {
			id := fmt.Sprintf("m%d", len(ids)+1)
			ids = append(ids, id)
			c.handlers[source].have[id] = []byte(id)
			if err := c.nodes[source].Broadcast(c.topic, []byte(id), []byte(id)); err != nil {
				t.Fatal(err)
			}
			c.collect(source, step)
		}
		for _, dead := range crashAt[step] {
			delete(c.nodes, dead)
			for peer := range c.links[dead] {
				d := step + rng.IntN(maxDetection+1)
				detectAt[d] = append(detectAt[d], detection{dead, peer})
			}
		}
		for _, d := range detectAt[step] {
			c.unlink(d.dead, d.peer)
			c.collect(d.peer, step)
		}
		c.deliverDue(step)
		if step%stepsPerTick == 0 {
			for _, name := range c.names() {
				c.nodes[name].Tick()
				c.collect(name, step)
			}
		}
	}

	reached := c.reachable(source)
	for _, name := range c.names() {
		if name == source || !reached[name] {
			continue
		}
		for _, id := range ids {
			if got := c.handlers[name].delivered[id]; got != 1 {
				t.Errorf("n=%d: %s delivered %s %d times, want once (stats %+v)", n, name, id, got, c.nodes[name].Stats())
			}
		}
	}
	for name, h := range c.handlers {
		for id, k := range h.delivered {
			if k > 1 {
				t.Errorf("%s delivered %s %d times", name, id, k)
			}
		}
	}
}

// deliverDue hands every message due by step to its receiver, in order.
func (c *cluster) deliverDue(step int) {
	for {
		var due []inflight
		kept := c.queue[:0]
		for _, m := range c.queue {
			if m.due <= step {
				due = append(due, m)
			} else {
				kept = append(kept, m)
			}
		}
		c.queue = kept
		if len(due) == 0 {
			return
		}
		for _, m := range due {
			c.step(m, step)
		}
	}
}

// reachable returns the live nodes connected to from over live links.
func (c *cluster) reachable(from string) map[string]bool {
	seen := map[string]bool{from: true}
	frontier := []string{from}
	for len(frontier) > 0 {
		next := frontier[0]
		frontier = frontier[1:]
		for peer := range c.links[next] {
			if _, alive := c.nodes[peer]; alive && !seen[peer] {
				seen[peer] = true
				frontier = append(frontier, peer)
			}
		}
	}
	return seen
}
