package main

import (
	"fmt"
	"strconv"

	"github.com/cpggo/cpg/sim"
)

// runMix prints how often a settled cluster mixes, per mixing interval,
// across view sizes and walk lengths: the overlay policy aims at about two
// Mix calls per interval cluster-wide.
func runMix(o options) error {
	fmt.Printf("== mixing rate: %d nodes, seed %d, 10 mixing intervals after the cluster settled\n", o.nodes, o.seed)
	c := startClock()
	tw := newTable()
	fmt.Fprintln(tw, "active size\tARWL\tmixes per interval (mean)\tintended\tper interval\tnodes suspecting an island\tcomponents\t")
	rows := [][]string{{"active_size", "arwl", "mean", "intended", "islands", "components"}}
	for _, active := range []int{4, 5, 7, 10} {
		for _, arwl := range []int{2, 4, 6, 8} {
			cfg := o.config()
			cfg.HyParView.ActiveSize, cfg.HyParView.ARWL = active, arwl
			cfg.HyParView.PRWL = min(cfg.HyParView.PRWL, arwl)
			res, err := sim.MixRate{Config: cfg, Cluster: sim.Cluster{Nodes: o.nodes}}.Run()
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.0f\t%v\t%d\t%d\t\n", active, arwl, res.Mean, res.Intended, res.PerInterval, res.Islands, res.Overlay.Components)
			rows = append(rows, []string{strconv.Itoa(active), strconv.Itoa(arwl), f64(res.Mean), f64(res.Intended), strconv.Itoa(res.Islands), strconv.Itoa(res.Overlay.Components)})
		}
	}
	tw.Flush()
	wall, cpu := c.stop()
	fmt.Printf("%v wall, %v CPU\n\n", wall.Round(1e6), cpu.Round(1e6))
	return writeCSV(o.out, fmt.Sprintf("mix-%d.csv", o.nodes), rows)
}
