package main

import (
	"fmt"
	"strconv"

	"github.com/cpggo/cpg/sim"
)

// runRegistry replicates the registry with its own replication core: a
// round of joins, a partition with joins on both sides, and the heal,
// with nobody bridging the halves.
func runRegistry(o options) error {
	fmt.Printf("== registry: %d nodes, %d owners, seed %d, latency %v, loss %v\n", o.nodes, o.owners, o.seed, o.latency, o.loss)
	c := startClock()
	res, err := sim.Registry{Config: o.config(), Cluster: sim.Cluster{Nodes: o.nodes}, Owners: min(o.owners, o.nodes)}.Run()
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
	printSpeed(res.Stats, res.SimTime, wall, cpu)
	rows := [][]string{
		{"ops", "converged_s", "healed_s", "rmr", "pulls", "passed", "exchange_msgs", "exchange_bytes", "components"},
		{strconv.Itoa(res.Ops), secs(res.Converged), secs(res.Healed), strconv.FormatFloat(res.RMR, 'f', 4, 64),
			strconv.FormatUint(rep.Pulls, 10), strconv.FormatUint(rep.Passed, 10), strconv.FormatUint(res.Stats.RegistryExchanges, 10),
			strconv.FormatUint(rep.ExchangeBytes, 10), strconv.Itoa(res.Overlay.Components)},
	}
	return writeCSV(o.out, fmt.Sprintf("registry-%d.csv", o.nodes), rows)
}
