package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/cpggo/cpg/membership/hyparview"
	"github.com/cpggo/cpg/registry/replication"
)

// Registry replicates the registry's CRDT over Plumtree with the
// registry's own replication core: owners join members, then the network
// splits in two, both halves keep joining, and the partition heals.
// Replicas converge through the broadcast, the pulls a gap causes, and the
// hashed exchanges on new links and every (jittered) exchange period, whose
// results are passed on down each owner's tree.
type Registry struct {
	Config  Config
	Cluster Cluster
	// Owners nodes (default 100) each join JoinsPerOwner members (default
	// 10) over one second, before the partition and again during it.
	Owners        int
	JoinsPerOwner int
	// PartitionFor is how long the halves stay apart (default 30 s).
	PartitionFor time.Duration
	// Limit bounds each wait for convergence (default 5 minutes).
	Limit time.Duration
	// Check is how often convergence is checked (default 100 ms).
	Check time.Duration
	// Bridge makes one node of the partitioned side join through a node of
	// the other when the partition heals. The drivers do not do this; it
	// is there to compare with what the overlay's own healing achieves.
	Bridge bool
	// AtEnd, if set, is called with the simulator once the replicas agreed
	// after the heal, before Run returns: a place to measure what the
	// whole cluster holds (its heap, say) while it is still alive.
	AtEnd func(*Simulator)
}

// RegistryResult is what Registry measured. A negative time means the
// replicas did not converge within Limit.
type RegistryResult struct {
	Ops int // ops made
	// Converged is the time from the last join of the first round until
	// every live replica held the same data; Healed the time from the heal
	// until they did again.
	Converged, Healed time.Duration
	// RMR is the relative message redundancy of the first round, the
	// Plumtree paper's m/(n-1) - 1 summed over its ops: payload messages
	// delivered from its first join until convergence, per op and per
	// replica other than the owner, minus one. Every owner is a tree root.
	RMR float64
	// Replication sums the replicas' counters at the end.
	Replication replication.Stats
	// Overlay is the active-view graph at the end.
	Overlay Overlay
	Stats   Stats
	SimTime time.Duration
}

// Run runs the scenario.
func (sc Registry) Run() (RegistryResult, error) {
	var res RegistryResult
	if sc.Owners <= 0 {
		sc.Owners = 100
	}
	if sc.JoinsPerOwner <= 0 {
		sc.JoinsPerOwner = 10
	}
	if sc.PartitionFor <= 0 {
		sc.PartitionFor = 30 * time.Second
	}
	if sc.Limit <= 0 {
		sc.Limit = 5 * time.Minute
	}
	if sc.Check <= 0 {
		sc.Check = 100 * time.Millisecond
	}
	if sc.Cluster.Nodes < 2 || sc.Owners > sc.Cluster.Nodes {
		return res, fmt.Errorf("sim: registry scenario: %d owners on %d nodes", sc.Owners, sc.Cluster.Nodes)
	}
	s, err := New(sc.Config)
	if err != nil {
		return res, err
	}
	s.EnableRegistry()
	c := sc.Cluster.withDefaults(s.cfg)
	s.AddNodes(c.Nodes, c.JoinEvery)
	s.RunFor(time.Duration(c.Nodes)*c.JoinEvery + c.Settle)

	r := scenarioRand(s.cfg.Seed)
	live := s.LiveNodes()
	r.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	owners := slices.Clone(live[:sc.Owners])
	var joinErr error
	// joins schedules a round of joins over one second and returns the time
	// of its last join.
	joins := func(round int) time.Duration {
		start := s.Now()
		var last time.Duration
		for k := range sc.JoinsPerOwner {
			for _, o := range owners {
				at := start + time.Duration(k)*time.Second/time.Duration(sc.JoinsPerOwner) + time.Duration(r.IntN(1000))*time.Microsecond
				last = max(last, at)
				s.At(at, func() {
					if err := s.Join(o, fmt.Sprintf("g%d", k%7), fmt.Sprintf("%s/m%d.%d", s.Name(o), round, k)); err != nil && joinErr == nil {
						joinErr = err
					}
				})
				res.Ops++
			}
		}
		return last
	}
	// waitConverged runs until the replicas agree, checking every Check,
	// and returns the time since from.
	waitConverged := func(from time.Duration) time.Duration {
		for s.Now()-from < sc.Limit {
			s.RunFor(sc.Check)
			if s.RegistryConverged() {
				return s.Now() - from
			}
		}
		return -1
	}
	payloadsBefore := s.stats.RegistryPayloads
	last := joins(1)
	firstRound := res.Ops
	s.RunUntil(last)
	res.Converged = waitConverged(last)
	if n := s.Live(); n > 1 {
		res.RMR = float64(s.stats.RegistryPayloads-payloadsBefore)/float64(firstRound*(n-1)) - 1
	}

	s.Partition(live[:len(live)/2])
	joins(2)
	s.RunFor(sc.PartitionFor)
	s.Heal()
	if sc.Bridge {
		s.bridge(live[0], live[len(live)-1])
	}
	res.Healed = waitConverged(s.Now())
	if joinErr != nil {
		return res, joinErr
	}
	res.Replication = s.RegistryStats()
	res.Stats, res.SimTime = s.Stats(), s.Now()
	res.Overlay = s.Overlay(0)
	if sc.AtEnd != nil {
		sc.AtEnd(s)
	}
	return res, nil
}

// bridge makes node a join the overlay again through node b.
func (s *Simulator) bridge(a, b int) {
	n := s.nodes[a]
	if !n.alive || !s.nodes[b].alive {
		return
	}
	n.hv.Join(hyparview.Peer{Name: s.nodes[b].name})
	s.flush(n)
}
