package hyparview

import (
	"fmt"
	"testing"
)

// TestNetworkJoinAndHeal grows an overlay of 200 nodes, each joining through
// a random earlier node while messages arrive in random order, then kills
// half of them at once and lets the survivors heal.
func TestNetworkJoinAndHeal(t *testing.T) {
	seeds := 5
	if testing.Short() {
		seeds = 1
	}
	for seed := range int64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed+1), func(t *testing.T) { testNetworkJoinAndHeal(t, seed+1) })
	}
}

func testNetworkJoinAndHeal(t *testing.T, seed int64) {
	const (
		nodes        = 200
		joinsPerTick = 10
		settleTicks  = 300 // three shuffle periods
		healPeriods  = 3
	)
	cfg := DefaultConfig()
	net := newTestNet(seed, cfg)

	for i := range nodes {
		name := fmt.Sprintf("n%03d", i)
		h := net.add(name)
		if i > 0 {
			live := net.live()
			h.Join(Peer{Name: live[net.rng.Intn(len(live)-1)]})
			if err := net.collectFrom(name); err != nil {
				t.Fatal(err)
			}
		}
		if i%joinsPerTick == joinsPerTick-1 {
			if err := net.tick(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range settleTicks {
		if err := net.tick(); err != nil {
			t.Fatal(err)
		}
	}
	if err := net.check(); err != nil {
		t.Fatal(err)
	}
	if comps := net.components(); len(comps) != 1 {
		t.Fatalf("after joins the overlay has %d components, sizes %d...", len(comps), len(comps[0]))
	}
	hist := net.activeSizes()
	t.Logf("after %d joins and %d ticks: active view sizes %v", nodes, settleTicks, hist)
	if hist[cfg.ActiveSize] < nodes*95/100 {
		t.Errorf("only %d of %d nodes have a full active view: %v", hist[cfg.ActiveSize], nodes, hist)
	}
	for size := range hist {
		if size < cfg.ActiveSize-1 {
			t.Errorf("some node has only %d active peers: %v", size, hist)
		}
	}

	// In a stable overlay no link changes: nothing is evicted, and only
	// the few nodes one link short keep asking (low priority) and being
	// refused.
	clear(net.sent)
	for range cfg.ShuffleTicks {
		if err := net.tick(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("one quiet shuffle period: %d SHUFFLE, %d SHUFFLE_REPLY, %d NEIGHBOR, %d DISCONNECT", net.sent[typeShuffle], net.sent[typeShuffleReply], net.sent[typeNeighbor], net.sent[typeDisconnect])
	if net.sent[typeDisconnect] != 0 {
		t.Errorf("a stable overlay sent %d DISCONNECT in one shuffle period", net.sent[typeDisconnect])
	}

	// Kill half at once: every other node, so that survivors lose about
	// half their links.
	for i := 0; i < nodes; i += 2 {
		if err := net.kill(fmt.Sprintf("n%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("right after killing half, before any message: active view sizes %v", net.activeSizes())
	// Evictions cannot cascade: each answers a high-priority request from
	// a node below ActiveSize-1, lifts that node by one, and drops a full
	// node only to ActiveSize-1, which asks with low priority. So the
	// evictions while healing are bounded by the survivors' deficit below
	// ActiveSize-1 right now; the other DISCONNECTs (undoing an accept that
	// came too late) are rare enough to fit under the same bound.
	deficit := 0
	for _, name := range net.live() {
		deficit += max(0, cfg.ActiveSize-1-len(net.nodes[name].active))
	}
	clear(net.sent)
	if err := net.drain(); err != nil {
		t.Fatal(err)
	}
	healedAt := -1
	for tick := range healPeriods * cfg.ShuffleTicks {
		if err := net.tick(); err != nil {
			t.Fatal(err)
		}
		if healedAt < 0 && minActive(net) >= cfg.ActiveSize-1 && len(net.components()) == 1 {
			healedAt = tick + 1
		}
	}
	t.Logf("every survivor back to at least %d active peers, connected, after %d ticks", cfg.ActiveSize-1, healedAt)
	t.Logf("healing sent %d DISCONNECT for a deficit of %d links below ActiveSize-1", net.sent[typeDisconnect], deficit)
	if net.sent[typeDisconnect] > deficit {
		t.Errorf("healing sent %d DISCONNECT, more than the deficit of %d: evictions cascade", net.sent[typeDisconnect], deficit)
	}
	if err := net.check(); err != nil {
		t.Fatal(err)
	}
	survivors := len(net.live())
	if comps := net.components(); len(comps) != 1 {
		t.Fatalf("after killing half, the survivors form %d components, sizes %d...", len(comps), len(comps[0]))
	}
	hist = net.activeSizes()
	t.Logf("after killing %d and %d ticks: active view sizes %v", nodes-survivors, healPeriods*cfg.ShuffleTicks, hist)
	if hist[cfg.ActiveSize] < survivors*95/100 {
		t.Errorf("only %d of %d survivors refilled their active view: %v", hist[cfg.ActiveSize], survivors, hist)
	}
	for size := range hist {
		if size < cfg.ActiveSize-1 {
			t.Errorf("some survivor has only %d active peers: %v", size, hist)
		}
	}
}

func minActive(n *testNet) int {
	least := n.cfg.ActiveSize
	for _, name := range n.live() {
		least = min(least, len(n.nodes[name].active))
	}
	return least
}

// TestNetworkSlowLinks runs the overlay with messages that take a random
// number of ticks and a request timeout shorter than many of them, so that
// replies arrive late, DISCONNECTs overtake accepts and requests cross.
// Once the network is drained, the active views must still be symmetric
// with equal link epochs on both sides.
func TestNetworkSlowLinks(t *testing.T) {
	const nodes = 100
	cfg := DefaultConfig()
	cfg.NeighborTimeoutTicks = 2
	cfg.ShuffleTicks = 20
	for seed := range int64(3) {
		t.Run(fmt.Sprintf("seed=%d", seed+1), func(t *testing.T) {
			net := newTestNet(seed+1, cfg)
			for i := range nodes {
				name := fmt.Sprintf("n%03d", i)
				h := net.add(name)
				if i > 0 {
					h.Join(Peer{Name: net.live()[net.rng.Intn(i)]})
				}
				if err := net.tickSlow(0.4); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 200 {
				if i == 100 {
					for j := 1; j < nodes; j += 4 {
						if err := net.kill(fmt.Sprintf("n%03d", j)); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := net.tickSlow(0.4); err != nil {
					t.Fatal(err)
				}
			}
			if err := net.drain(); err != nil {
				t.Fatal(err)
			}
			if err := net.check(); err != nil {
				t.Fatal(err)
			}
			for range 5 * cfg.ShuffleTicks {
				if err := net.tick(); err != nil {
					t.Fatal(err)
				}
			}
			if err := net.check(); err != nil {
				t.Fatal(err)
			}
			if comps := net.components(); len(comps) != 1 {
				t.Fatalf("%d components: %v", len(comps), comps[1:])
			}
			t.Logf("active view sizes %v", net.activeSizes())
			if least := minActive(net); least < cfg.ActiveSize-1 {
				t.Errorf("a node has only %d active peers: %v", least, net.activeSizes())
			}
		})
	}
}
