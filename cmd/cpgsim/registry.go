package main

import (
	"fmt"
	"runtime"
	"strconv"

	"github.com/cpggo/cpg/crdt"

	"github.com/cpggo/cpg/sim"
)

// runRegistry replicates the registry with its own replication core: a
// round of joins, a partition with joins on both sides, and the heal,
// with nobody bridging the halves.
func runRegistry(o options) error {
	fmt.Printf("== registry: %d nodes, %d owners, seed %d, latency %v, loss %v\n", o.nodes, o.owners, o.seed, o.latency, o.loss)
	c := startClock()
	var heap heapAtEnd
	res, err := sim.Registry{Config: o.config(), Cluster: sim.Cluster{Nodes: o.nodes}, Owners: min(o.owners, o.nodes), AtEnd: heap.measure}.Run()
	if err != nil {
		return err
	}
	wall, cpu := c.stop()
	rep := res.Replication
	tw := newTable()
	fmt.Fprintln(tw, "ops\tconverged after last join\tconverged after heal\tRMR (first round)\tpulls\towner states passed on\texchange msgs\texchange bytes\toverlay components at end\t")
	fmt.Fprintf(tw, "%d\t%s\t%s\t%.4f\t%d\t%d\t%d\t%d\t%d\t\n", res.Ops, since(res.Converged), since(res.Healed), res.RMR,
		rep.Pulls, rep.Passed, res.Stats.RegistryExchanges, rep.ExchangeBytes, res.Overlay.Components)
	tw.Flush()
	fmt.Printf("overlay policy: %d mixes, %d rejoins, %d reconnects of failed members, %d member views merged again\n",
		res.Stats.Mixes, res.Stats.Rejoins, res.Stats.Reconnects, res.Stats.ViewMerges)
	heap.print()
	printSpeed(res.Stats, res.SimTime, wall, cpu)
	rows := [][]string{
		{"ops", "converged_s", "healed_s", "rmr", "pulls", "passed", "exchange_msgs", "exchange_bytes", "components"},
		{strconv.Itoa(res.Ops), secs(res.Converged), secs(res.Healed), strconv.FormatFloat(res.RMR, 'f', 4, 64),
			strconv.FormatUint(rep.Pulls, 10), strconv.FormatUint(rep.Passed, 10), strconv.FormatUint(res.Stats.RegistryExchanges, 10),
			strconv.FormatUint(rep.ExchangeBytes, 10), strconv.Itoa(res.Overlay.Components)},
	}
	return writeCSV(o.out, fmt.Sprintf("registry-%d.csv", o.nodes), rows)
}

// heapAtEnd is the simulator's live heap once the replicas agreed after
// the heal, and what it comes to per replicated entry (every live node
// holds every entry): the figure that tells whether a cluster size fits
// a machine.
type heapAtEnd struct {
	bytes             uint64
	replicas, entries int
}

func (h *heapAtEnd) measure(s *sim.Simulator) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.bytes = ms.HeapAlloc
	live := s.LiveNodes()
	h.replicas = len(live)
	if len(live) > 0 {
		st := s.Replica(live[0]).State()
		for _, scope := range st.Scopes() {
			st.Groups(scope, func(g *crdt.Group) { h.entries += g.Len() })
		}
	}
}

func (h *heapAtEnd) print() {
	if h.replicas == 0 || h.entries == 0 {
		return
	}
	fmt.Printf("live heap at the end %.1f MB: %d replicas of %d entries, %.0f bytes per replicated entry (everything else included)\n",
		float64(h.bytes)/1e6, h.replicas, h.entries, float64(h.bytes)/float64(h.replicas*h.entries))
}
