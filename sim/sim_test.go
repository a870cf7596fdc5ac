package sim

import (
	"reflect"
	"testing"
	"time"
)

// clusterSize is the scale of the invariant tests: 1,000 nodes, or 300
// with -short.
func clusterSize() int {
	if testing.Short() {
		return 300
	}
	return 1000
}

func TestSteadyStateDeliversEverythingOverOneTree(t *testing.T) {
	n := clusterSize()
	res, err := Steady{Config: DefaultConfig(), Cluster: Cluster{Nodes: n}, Broadcasts: 20}.Run()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Overlay.Connected() || res.Overlay.Nodes != n {
		t.Fatalf("overlay not one connected symmetric graph of %d nodes: %+v", n, res.Overlay)
	}
	if res.Overlay.MinDegree < DefaultConfig().HyParView.ActiveSize-1 {
		t.Errorf("a node has %d active peers; every node should hold at least ActiveSize-1", res.Overlay.MinDegree)
	}
	if len(res.Results) != 20 || len(res.Warmup) != 10 {
		t.Fatalf("%d broadcasts measured and %d warm-up, want 20 and 10", len(res.Results), len(res.Warmup))
	}
	for _, r := range append(res.Warmup, res.Results...) {
		if r.Delivered != r.Eligible || r.Eligible != n {
			t.Errorf("broadcast %d from %d: %d of %d nodes delivered", r.ID, r.Source, r.Delivered, r.Eligible)
		}
	}
	sum := Summarize(Plumtree, res.Results)
	t.Logf("%d nodes: %+v", n, sum)
	if sum.RMR > 0.05 {
		t.Errorf("steady-state RMR %.3f, want at most 0.05 once the trees are built", sum.RMR)
	}
	if sum.DepthRatio > 1.5 {
		t.Errorf("mean LDH is %.2f times the shortest-path depth, want at most 1.5", sum.DepthRatio)
	}
	// The first broadcast of each source floods the overlay: every link
	// but the tree's carries one redundant copy.
	warm := Summarize(Plumtree, res.Warmup)
	if warm.RMR < 1 {
		t.Errorf("first broadcasts had RMR %.3f; flooding a degree-5 overlay costs about 3", warm.RMR)
	}
}

func TestHalfTheNodesFailingAtOnce(t *testing.T) {
	n := clusterSize()
	res, err := MassFailure{Config: DefaultConfig(), Cluster: Cluster{Nodes: n}, Fraction: 0.5, Broadcasts: 8}.Run()
	if err != nil {
		t.Fatal(err)
	}
	if res.Survivors != n-n/2 {
		t.Fatalf("%d survivors, want %d", res.Survivors, n-n/2)
	}
	if res.Connected < 0 || !res.After.Connected() {
		t.Fatalf("survivors never formed one connected symmetric overlay: %+v", res.After)
	}
	if res.After.MinDegree < DefaultConfig().HyParView.ActiveSize-1 {
		t.Errorf("after healing a node has %d active peers", res.After.MinDegree)
	}
	t.Logf("connected after %v, full after %v", res.Connected, res.Full)
	if len(res.Results) != 8 {
		t.Fatalf("%d broadcasts after the failure, want 8", len(res.Results))
	}
	// From the third broadcast after the failure on, every survivor
	// delivers.
	for k, r := range res.Results {
		if k >= 2 && r.Delivered != r.Eligible {
			t.Errorf("broadcast %d after the failure: %d of %d survivors delivered", k+1, r.Delivered, r.Eligible)
		}
	}
}

// Nodes joining one a millisecond, each through a random node already
// started (some still joining themselves), form one overlay within two
// shuffle periods of the last join. Before stranded nodes rejoined, seed
// 5 left a clique of 5 apart for over a minute: a contact evicted its
// joiner, which kept only the nodes that had joined through it.
func TestJoinsFormOneComponent(t *testing.T) {
	for _, seed := range []uint64{1, 2, 5} {
		cfg := DefaultConfig()
		cfg.Seed = seed
		res, err := Shape{Config: cfg, Cluster: Cluster{Nodes: 1000}, PathSources: 1}.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %d components at the last join, one for good %v later; %d rejoins", seed, res.AtLastJoin, res.OneComponent, res.Stats.Rejoins)
		if limit := 2 * time.Duration(cfg.HyParView.ShuffleTicks) * cfg.Tick; res.OneComponent < 0 || res.OneComponent > limit {
			t.Errorf("seed %d: one component %v after the last join (negative: never), want within %v; at the end %d components, largest %d",
				seed, res.OneComponent, limit, res.Overlay.Components, res.Overlay.Largest)
		}
	}
}

// After most of the cluster dies at once, no survivor stays without a link
// while one of its passive peers is alive: it asks that peer at once, with
// high priority. (When a refused low-priority request put a peer in
// backoff for high-priority ones too, a survivor of a 70-90% failure went
// 6.5 s without a link and missed 8 broadcasts; when, besides, a rejoin
// through a dead member waited out the rejoin gap, a survivor of a 90%
// failure missed every broadcast.) From the third broadcast after the
// failure on, every survivor delivers.
func TestSurvivorsOfAMassFailureStayLinked(t *testing.T) {
	for _, fraction := range []float64{0.7, 0.9} {
		res, err := MassFailure{Config: DefaultConfig(), Cluster: Cluster{Nodes: 1000}, Fraction: fraction, Broadcasts: 6}.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%.0f%% killed: %d survivors unlinked with a live passive peer, the longest for %v; the longest alone %v; %d rejoins",
			fraction*100, res.Unlinked, res.LongestUnlinked, res.LongestAlone, res.Stats.Rejoins)
		if res.LongestUnlinked > 2*time.Second {
			t.Errorf("%.0f%% killed: a survivor went %v without a link while a passive peer of it was alive, want at most 2s", fraction*100, res.LongestUnlinked)
		}
		for k, r := range res.Results {
			if k >= 2 && r.Delivered != r.Eligible {
				t.Errorf("%.0f%% killed: broadcast %d after the failure reached %d of %d survivors", fraction*100, k+1, r.Delivered, r.Eligible)
			}
		}
	}
}

// When 95% die, some survivors lose every passive peer too and rejoin
// through the directory, which still lists the dead for DetectDelay (10 s):
// a rejoin whose contact is dead is replaced at the next tick, so such a
// survivor finds one of the few live members within a few seconds. (The
// simulator reported a failed short-lived send as a failed link, so the
// core waited out the rejoin gap before each new contact, and survivors
// stayed alone for 10.2 s, until the directory forgot the dead.)
func TestSurvivorsOfA95PercentFailureFindALiveContact(t *testing.T) {
	res, err := MassFailure{Config: DefaultConfig(), Cluster: Cluster{Nodes: 1000}, Fraction: 0.95, Broadcasts: 4}.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("longest alone %v, connected after %v, %d rejoins", res.LongestAlone, res.Connected, res.Stats.Rejoins)
	if res.LongestAlone > 5*time.Second || res.Connected < 0 || res.Connected > 5*time.Second {
		t.Errorf("a survivor stayed alone %v, and the survivors were connected %v after the failure; want both within 5s (a twentieth of the members is alive)", res.LongestAlone, res.Connected)
	}
}

// In a settled overlay the cluster mixes about twice per mixing interval
// whatever the view size and walk length Validate accepts: no node of one
// connected overlay takes itself for an island. (With the island check's
// threshold fixed at 2·ActiveSize origins within a time window, ARWL 2
// made 6,005 mixes in 10 intervals at 1,000 nodes.) The corners of
// ActiveSize 4-10 and ARWL 2-8; cpgsim -scenario mix prints the grid.
func TestMixRateStaysNearIntended(t *testing.T) {
	if testing.Short() {
		t.Skip("four 1,000-node clusters over ten mixing intervals")
	}
	for _, c := range []struct{ active, arwl int }{{4, 2}, {10, 2}, {4, 8}, {10, 8}} {
		cfg := DefaultConfig()
		cfg.HyParView.ActiveSize, cfg.HyParView.ARWL = c.active, c.arwl
		cfg.HyParView.PRWL = min(cfg.HyParView.PRWL, c.arwl)
		// Shorter intervals than the default 30 s: the same rate per
		// interval, and the island check consulted three times as often.
		cfg.MixInterval = 10 * time.Second
		res, err := MixRate{Config: cfg, Cluster: Cluster{Nodes: 1000}}.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ActiveSize %d, ARWL %d: %.1f mixes per interval %v", c.active, c.arwl, res.Mean, res.PerInterval)
		if res.Mean < res.Intended/2 || res.Mean > 2*res.Intended || res.Islands > 0 {
			t.Errorf("ActiveSize %d, ARWL %d: %.1f mixes per interval (%v), %d nodes suspecting an island; want about %v and none",
				c.active, c.arwl, res.Mean, res.PerInterval, res.Islands, res.Intended)
		}
	}
}

// run is a small scenario that exercises every source of randomness and
// every kind of event: joins, the three protocols, loss, a crash, a
// restart, a partition and its heal, and the registry.
func run(seed uint64) (hash uint64, results []BroadcastResult, stats Stats) {
	cfg := DefaultConfig()
	cfg.Seed = seed
	cfg.Loss = 0.01
	cfg.Latency = LogNormal{Median: 2 * time.Millisecond, Sigma: 0.5, Max: 50 * time.Millisecond}
	cfg.Gossip.NewQueue = memberlistQueue
	s, err := New(cfg)
	if err != nil {
		panic(err)
	}
	s.EnableRegistry()
	s.AddNodes(60, 2*time.Millisecond)
	s.RunFor(15 * time.Second)
	for k := range 6 {
		for _, p := range []Protocol{Plumtree, Flood, Gossip} {
			id, err := s.Broadcast(k*7, p)
			if err != nil {
				panic(err)
			}
			results = append(results, s.Result(id))
		}
		if err := s.Join(k*5, "g", "m"); err != nil {
			panic(err)
		}
		s.RunFor(500 * time.Millisecond)
	}
	s.Crash(3, 4, 5)
	s.RunFor(2 * time.Second)
	s.Restart(4)
	s.Partition([]int{10, 11, 12, 13, 14, 15})
	s.RunFor(5 * time.Second)
	s.Heal()
	s.RunFor(5 * time.Second)
	for i := range results {
		results[i] = s.Result(results[i].ID)
	}
	return s.TraceHash(), results, s.Stats()
}

func TestSameSeedSameRun(t *testing.T) {
	h1, r1, s1 := run(7)
	h2, r2, s2 := run(7)
	if h1 != h2 {
		t.Errorf("event trace hashes differ: %x and %x", h1, h2)
	}
	if !reflect.DeepEqual(r1, r2) || s1 != s2 {
		t.Errorf("results differ:\n%+v\n%+v\n%+v\n%+v", r1, r2, s1, s2)
	}
	if s1.Lost == 0 || s1.LinkFailed == 0 || s1.Gossip == 0 || s1.Flood == 0 {
		t.Errorf("the run did not exercise loss, failures and every protocol: %+v", s1)
	}
	h3, _, _ := run(8)
	if h3 == h1 {
		t.Errorf("seeds 7 and 8 gave the same trace %x", h1)
	}
}

func TestAgendaOrdersByTimeThenScheduling(t *testing.T) {
	var a agenda
	times := []time.Duration{5, 1, 3, 1, 5, 0, 3}
	for i, at := range times {
		a.push(&event{at: at, from: int32(i)})
	}
	var got []int32
	for a.len() > 0 {
		got = append(got, a.pop().from)
	}
	want := []int32{5, 1, 3, 2, 6, 0, 4}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestLatencyDistributionsStayInBounds(t *testing.T) {
	s, _ := New(DefaultConfig())
	u := Uniform{Min: time.Millisecond, Max: 3 * time.Millisecond}
	l := LogNormal{Median: time.Millisecond, Sigma: 1, Max: 20 * time.Millisecond}
	sawLow, sawHigh := false, false
	for range 10000 {
		d := u.Sample(s.rng)
		if d < u.Min || d > u.Max {
			t.Fatalf("uniform sample %v outside %v", d, u)
		}
		d = l.Sample(s.rng)
		if d <= 0 || d > l.Max {
			t.Fatalf("lognormal sample %v outside (0, %v]", d, l.Max)
		}
		sawLow = sawLow || d < l.Median/2
		sawHigh = sawHigh || d > 2*l.Median
	}
	if !sawLow || !sawHigh {
		t.Errorf("lognormal with sigma 1 never strayed far from its median")
	}
	if Constant(time.Millisecond).Sample(s.rng) != time.Millisecond {
		t.Error("constant latency varied")
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Loss = 1
	if _, err := New(cfg); err == nil {
		t.Error("loss 1 accepted")
	}
	cfg = DefaultConfig()
	cfg.HyParView.ActiveSize = 0
	cfg.HyParView.PassiveSize = 3
	if _, err := New(cfg); err == nil {
		t.Error("active size 0 accepted")
	}
	if _, err := (MassFailure{Config: DefaultConfig(), Cluster: Cluster{Nodes: 10}, Fraction: 1}).Run(); err == nil {
		t.Error("killing every node accepted")
	}
}

func TestBroadcastFromADeadNodeFails(t *testing.T) {
	s, _ := New(DefaultConfig())
	s.AddNodes(3, time.Millisecond)
	s.RunFor(time.Second)
	s.Crash(1)
	if _, err := s.Broadcast(1, Plumtree); err == nil {
		t.Error("a crashed node broadcast")
	}
}

func TestChurnKeepsDelivering(t *testing.T) {
	res, err := Churn{Config: DefaultConfig(), Cluster: Cluster{Nodes: 200}, Rate: 2, Duration: 30 * time.Second}.Run()
	if err != nil {
		t.Fatal(err)
	}
	if res.Crashes == 0 || res.Restarts == 0 {
		t.Fatalf("no churn: %d crashes, %d restarts", res.Crashes, res.Restarts)
	}
	sum := Summarize(Plumtree, res.Results)
	t.Logf("%d crashes, %d restarts: %+v", res.Crashes, res.Restarts, sum)
	if sum.Reliability < 0.99 {
		t.Errorf("mean reliability %.4f under churn", sum.Reliability)
	}
	last := res.Overlays[len(res.Overlays)-1]
	if last.Components != 1 {
		t.Errorf("overlay split in %d components under churn", last.Components)
	}
}

func TestShapeOfARing(t *testing.T) {
	// A hand-built ring of 6: every node has two neighbours that are not
	// linked to each other, so clustering is 0; the mean distance between
	// distinct nodes is (1+1+2+2+3)/5.
	s, _ := New(DefaultConfig())
	s.AddNodes(6, 0)
	s.RunUntil(0)
	for _, n := range s.nodes {
		n.links = []int32{(n.idx + 1) % 6, (n.idx + 5) % 6}
	}
	o := s.Overlay(6)
	if !o.Connected() || o.Clustering != 0 || o.MinDegree != 2 || o.MaxDegree != 2 {
		t.Errorf("ring measured as %+v", o)
	}
	if want := 9.0 / 5; o.AvgShortestPath != want {
		t.Errorf("mean distance %v, want %v", o.AvgShortestPath, want)
	}
	if len(o.InDegree) != 3 || o.InDegree[2] != 6 {
		t.Errorf("in-degrees %v, want all six at 2", o.InDegree)
	}
	s.nodes[0].links = s.nodes[0].links[:1]
	if o := s.Overlay(0); o.Symmetric || o.Asymmetric != 1 {
		t.Errorf("a one-sided link went unnoticed: %+v", o)
	}
}

// The registry replicates with its own replication core: every replica
// holds every join within half a second of the last one (the broadcast and
// the pulls a gap causes), and agrees again within ten seconds of a heal
// with nobody bridging the halves (the cores' reconnects and mixing join
// the overlays, the exchanges on new links fill the gap, and what they
// bring is passed on down each owner's tree). Before the exchange's
// results were passed on, replicas filled in one exchange period per hop:
// minutes at this size.
func TestRegistryReplicasConverge(t *testing.T) {
	for _, bridge := range []bool{false, true} {
		res, err := Registry{
			Config: DefaultConfig(), Cluster: Cluster{Nodes: 100}, Owners: 20, JoinsPerOwner: 5,
			PartitionFor: 10 * time.Second, Limit: 5 * time.Minute, Bridge: bridge,
		}.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("bridge %v: converged %v after the last join, healed %v, RMR %.3f, %+v", bridge, res.Converged, res.Healed, res.RMR, res.Replication)
		if res.Converged < 0 || res.Converged > 500*time.Millisecond {
			t.Errorf("bridge %v: replicas agreed %v after the last join, want within 500ms", bridge, res.Converged)
		}
		if res.Healed < 0 || res.Healed > 10*time.Second || res.Overlay.Components != 1 {
			t.Errorf("bridge %v: replicas agreed %v after the heal (overlay in %d components), want within 10s", bridge, res.Healed, res.Overlay.Components)
		}
	}
}

func TestPeersDoNotChangeThePlumtreeRun(t *testing.T) {
	var got [2][]BroadcastResult
	for k, peers := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Gossip.NewQueue = memberlistQueue
		res, err := Steady{Config: cfg, Cluster: Cluster{Nodes: 100}, Broadcasts: 5, Sources: 2, Peers: peers}.Run()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Results {
			if r.Protocol == Plumtree {
				r.ID = 0 // ids count every protocol's broadcasts
				got[k] = append(got[k], r)
			}
		}
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("Plumtree results changed when the peers ran beside it:\n%+v\n%+v", got[0], got[1])
	}
}
