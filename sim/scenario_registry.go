package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/cpggo/cpg/membership/hyparview"
)

// Registry replicates the registry's CRDT over Plumtree: owners join
// members, then the network splits in two, both halves keep joining, and
// the partition heals. Replicas converge through the broadcast and, after
// the heal, through the digest/delta exchange on new links and every
// exchange period.
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
	// Check is how often convergence is checked (default 1 s); a check
	// computes every replica's digest.
	Check time.Duration
	// Bridge makes one node of the partitioned side join through a node of
	// the other when the partition heals. The drivers do not do this (an
	// overlay node rejoins only when isolated), and without it the two
	// halves of the overlay, each with full active views, stay apart.
	Bridge bool
}

// RegistryResult is what Registry measured. A negative time means the
// replicas did not converge within Limit.
type RegistryResult struct {
	Ops int // ops made
	// Converged is the time from the first join until every replica's
	// digest was equal; Healed the time from the heal until they were
	// equal again.
	Converged, Healed time.Duration
	// Overlay is the active-view graph at the end: a partition can leave
	// the overlay split in two after the network heals.
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
		sc.Check = time.Second
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
	joins := func(round int) {
		start := s.Now()
		for k := range sc.JoinsPerOwner {
			for _, o := range owners {
				at := start + time.Duration(k)*time.Second/time.Duration(sc.JoinsPerOwner) + time.Duration(r.IntN(1000))*time.Microsecond
				s.At(at, func() {
					if err := s.Join(o, fmt.Sprintf("g%d", k%7), fmt.Sprintf("%s/m%d.%d", s.Name(o), round, k)); err != nil && joinErr == nil {
						joinErr = err
					}
				})
				res.Ops++
			}
		}
	}
	waitConverged := func() time.Duration {
		start := s.Now()
		for s.Now()-start < sc.Limit {
			s.RunFor(sc.Check)
			if s.RegistryConverged() {
				return s.Now() - start
			}
		}
		return -1
	}
	joins(1)
	s.RunFor(time.Second)
	res.Converged = waitConverged()
	if res.Converged >= 0 {
		res.Converged += time.Second
	}

	s.Partition(live[:len(live)/2])
	joins(2)
	s.RunFor(sc.PartitionFor)
	s.Heal()
	if sc.Bridge {
		s.bridge(live[0], live[len(live)-1])
	}
	res.Healed = waitConverged()
	if joinErr != nil {
		return res, joinErr
	}
	res.Overlay = s.Overlay(0)
	res.Stats, res.SimTime = s.Stats(), s.Now()
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
