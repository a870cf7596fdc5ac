package hyparview

import (
	"fmt"
	"slices"
	"testing"
)

// After a partition heals, HyParView alone leaves the overlay split: both
// sides refilled their views from their own nodes. A few Mix links, drawn
// from the whole cluster as the driver draws them from memberlist, join
// the sides again without breaking the views' invariants.
func TestMixJoinsTheSidesOfAHealedPartition(t *testing.T) {
	const nodes = 100
	cfg := DefaultConfig()
	net := newTestNet(7, cfg)
	for i := range nodes {
		h := net.add(fmt.Sprintf("n%03d", i))
		if i > 0 {
			live := net.live()
			h.Join(Peer{Name: live[net.rng.Intn(len(live)-1)]})
			if err := net.collectFrom(h.Self().Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	ticks := func(k int) {
		t.Helper()
		for range k {
			if err := net.tick(); err != nil {
				t.Fatal(err)
			}
		}
	}
	ticks(3 * cfg.ShuffleTicks)
	if comps := net.components(); len(comps) != 1 {
		t.Fatalf("before the partition: %d components", len(comps))
	}

	side := map[string]int{}
	for i, name := range net.names {
		side[name] = i % 2
	}
	if err := net.partition(side); err != nil {
		t.Fatal(err)
	}
	ticks(3 * cfg.ShuffleTicks)
	if err := net.partition(nil); err != nil {
		t.Fatal(err)
	}
	ticks(3 * cfg.ShuffleTicks)
	if err := net.check(); err != nil {
		t.Fatal(err)
	}
	if comps := net.components(); len(comps) != 2 {
		t.Fatalf("without Mix the healed overlay should stay in its 2 sides, has %d components", len(comps))
	}

	// One Mix every 10 ticks somewhere in the cluster, to a random node.
	mixes := 0
	for tick := 0; len(net.components()) > 1; tick++ {
		if tick > 3*cfg.ShuffleTicks {
			t.Fatalf("still %d components after %d mixes", len(net.components()), mixes)
		}
		if tick%10 == 0 {
			from, to := net.names[net.rng.Intn(nodes)], net.names[net.rng.Intn(nodes)]
			net.nodes[from].Mix(Peer{Name: to})
			if err := net.collectFrom(from); err != nil {
				t.Fatal(err)
			}
			mixes++
		}
		ticks(1)
	}
	ticks(cfg.ShuffleTicks)
	if err := net.check(); err != nil {
		t.Fatal(err)
	}
	if comps := net.components(); len(comps) != 1 {
		t.Fatalf("after mixing: %d components", len(comps))
	}
	if m := minActive(net); m < cfg.ActiveSize-1 {
		t.Fatalf("after mixing a node has only %d active peers", m)
	}
	t.Logf("one component again after %d mixes; active view sizes %v", mixes, net.activeSizes())
}

// A clique of nodes linked only among themselves (every view full, no
// failure) notices it from the few shuffle origins it sees, and Mix joins it
// to the rest; nodes of the large overlay do not mistake themselves for an
// island.
func TestIslandIsNoticedAndJoined(t *testing.T) {
	cfg := DefaultConfig()
	net := newTestNet(11, cfg)
	group := func(names []string) { joinGroup(t, net, names) }
	var main, island []string
	for i := range 120 {
		main = append(main, fmt.Sprintf("n%03d", i))
	}
	for i := range cfg.ActiveSize + 1 {
		island = append(island, fmt.Sprintf("i%d", i))
	}
	group(island)
	group(main)
	ticks := func(k int) {
		t.Helper()
		for range k {
			if err := net.tick(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Enough periods for every node to see islandVisits shuffles pass.
	ticks(2 * cfg.islandVisits() / cfg.ARWL * cfg.ShuffleTicks)
	if comps := net.components(); len(comps) != 2 {
		t.Fatalf("setup: want the main overlay and the island, have %d components", len(comps))
	}
	for _, name := range island {
		if !net.nodes[name].Island() {
			t.Errorf("%s does not notice it is in an island (%d shuffle origins)", name, len(net.nodes[name].origins.count))
		}
	}
	wrong := 0
	for _, name := range main {
		if net.nodes[name].Island() {
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d nodes of the main overlay think they are in an island", wrong, len(main))
	}

	// The driver's answer: every mixing interval, a node that suspects an
	// island mixes with a node drawn from the whole cluster.
	all := append(append([]string(nil), main...), island...)
	for round := 0; len(net.components()) > 1; round++ {
		if round > 5 {
			t.Fatalf("still %d components after %d mixing intervals", len(net.components()), round)
		}
		for _, name := range all {
			if net.nodes[name].Island() {
				net.nodes[name].Mix(Peer{Name: all[net.rng.Intn(len(all))]})
				if err := net.collectFrom(name); err != nil {
					t.Fatal(err)
				}
			}
		}
		ticks(3 * cfg.ShuffleTicks)
	}
	if err := net.check(); err != nil {
		t.Fatal(err)
	}
}

// joinGroup adds the named nodes, each joining through one added before
// it, and delivers the joins before the first tick, so that no node is ever
// isolated and rejoins through a node of another group.
func joinGroup(t *testing.T, net *testNet, names []string) {
	t.Helper()
	for i, name := range names {
		h := net.add(name)
		contact := names[(i+1)%len(names)]
		if i > 0 {
			contact = names[net.rng.Intn(i)]
		}
		h.Join(Peer{Name: contact})
		if err := net.collectFrom(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := net.drain(); err != nil {
		t.Fatal(err)
	}
}

// An island closed at setup (ActiveSize+1 nodes, each linked to all the
// others) is joined to the overlay within a shuffle period of the policy
// starting, two shuffle periods after the nodes started: its nodes'
// passive views stay poorer than a shuffle fills them, since every member
// is active, and each mixes once a period. Island() alone needs many
// shuffles to be sure (about 50 visits, some 9 periods in an island this
// small), and the random mixing rarely picks the island.
func TestIslandAtSetupIsJoinedWithinAShufflePeriod(t *testing.T) {
	cfg := DefaultConfig()
	net := newTestNet(11, cfg)
	var main, island []string
	for i := range 120 {
		main = append(main, fmt.Sprintf("n%03d", i))
	}
	for i := range cfg.ActiveSize + 1 {
		island = append(island, fmt.Sprintf("i%d", i))
	}
	joinGroup(t, net, island)
	joinGroup(t, net, main)
	// Settle without the policy (no directory yet), so that no node of
	// the main overlay is still short of links and rejoins, by chance,
	// through a node of the island.
	for range 3 * cfg.ShuffleTicks {
		if err := net.tick(); err != nil {
			t.Fatal(err)
		}
	}
	if comps := net.components(); len(comps) != 2 {
		t.Fatalf("setup: want the main overlay and the island, have %d components", len(comps))
	}
	for _, name := range net.names {
		net.nodes[name].SetDirectory(liveDirectory{net})
	}
	limit := cfg.ShuffleTicks
	tick := 0
	for ; len(net.components()) > 1; tick++ {
		if tick > limit {
			t.Fatalf("island still apart after %d ticks: %v", tick, net.components()[1:])
		}
		if err := net.tick(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("one component after %d ticks", tick)
	if err := net.check(); err != nil {
		t.Fatal(err)
	}
}

// The island check must stay quiet in a large connected overlay for every
// configuration Validate accepts: with a short walk (ARWL 2) a node sees
// few shuffles per period, with a large view it needs more origins to be
// sure, and neither may make it mistake itself for an island. (A 5-period
// window and a 2·ActiveSize threshold flagged about half the nodes with
// ARWL 2, and made 6,005 Mix calls in 10 intervals at 1,000 nodes instead
// of 20.)
func TestIslandCheckQuietInALargeOverlay(t *testing.T) {
	for _, c := range []struct{ active, arwl int }{{4, 2}, {5, 2}, {10, 2}, {5, 6}, {4, 8}, {10, 8}} {
		t.Run(fmt.Sprintf("active=%d/arwl=%d", c.active, c.arwl), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ActiveSize, cfg.ARWL, cfg.PRWL = c.active, c.arwl, min(cfg.PRWL, c.arwl)
			cfg.ShuffleTicks = 10 // the check counts shuffles, not time
			net := newTestNet(int64(c.active*100+c.arwl), cfg)
			const nodes = 200
			for i := range nodes {
				h := net.add(fmt.Sprintf("n%03d", i))
				if i > 0 {
					h.Join(Peer{Name: net.names[net.rng.Intn(i)]})
					if err := net.collectFrom(h.Self().Name); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 60 * cfg.ShuffleTicks {
				if err := net.tick(); err != nil {
					t.Fatal(err)
				}
			}
			// Joins alone can leave a small island (the driver's mixing
			// joins it later): look at the main overlay only.
			comps := net.components()
			slices.SortFunc(comps, func(a, b []string) int { return len(b) - len(a) })
			suspects := 0
			for _, name := range comps[0] {
				if net.nodes[name].Island() {
					suspects++
				}
			}
			if suspects > 0 {
				t.Errorf("%d of %d nodes of one connected overlay think they are in an island", suspects, len(comps[0]))
			}
		})
	}
}
