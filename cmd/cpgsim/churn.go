package main

import (
	"fmt"
	"strconv"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/cpggo/cpg/sim"
)

func runChurn(o options) error {
	fmt.Printf("== churn: %d nodes for %v, seed %d, latency %v, loss %v\n", o.nodes, o.duration, o.seed, o.latency, o.loss)
	c := startClock()
	res, err := sim.Churn{
		Config: o.config(), Cluster: sim.Cluster{Nodes: o.nodes},
		Rate: o.churnRate, Duration: o.duration, Interval: o.interval, Peers: o.peers,
	}.Run()
	if err != nil {
		return err
	}
	wall, cpu := c.stop()
	fmt.Printf("%d crashes, %d restarts\n", res.Crashes, res.Restarts)
	printSummaries("broadcasts from random live nodes during churn", res.Results, o.peers)
	tw := newTable()
	fmt.Fprintln(tw, "time\tlive\tcomponents\tlargest\tsymmetric\tdead links\tviews\t")
	for _, ov := range res.Overlays {
		fmt.Fprintf(tw, "%v\t%d\t%d\t%d\t%v\t%d\t%d..%d\t\n", ov.At, ov.Nodes, ov.Components, ov.Largest, ov.Symmetric, ov.DeadLinks, ov.MinDegree, ov.MaxDegree)
	}
	tw.Flush()
	printSpeed(res.Stats, res.SimTime, wall, cpu)
	rows := [][]string{{"protocol", "id", "at_s", "eligible", "delivered", "reliability", "payload_messages", "rmr", "ldh"}}
	lines := map[sim.Protocol]*series{}
	var order []sim.Protocol
	for _, r := range res.Results {
		rows = append(rows, []string{r.Protocol.String(), strconv.Itoa(r.ID), f64(r.At.Seconds()), strconv.Itoa(r.Eligible),
			strconv.Itoa(r.Delivered), f64(r.Reliability), strconv.Itoa(r.PayloadMessages), f64(r.RMR), strconv.Itoa(r.LDH)})
		l := lines[r.Protocol]
		if l == nil {
			l = &series{name: r.Protocol.String()}
			lines[r.Protocol] = l
			order = append(order, r.Protocol)
		}
		l.xys = append(l.xys, plotter.XY{X: r.At.Seconds(), Y: r.Reliability})
	}
	name := fmt.Sprintf("churn-%d", o.nodes)
	if err := writeCSV(o.out, name+".csv", rows); err != nil {
		return err
	}
	var ss []series
	for _, p := range order {
		ss = append(ss, *lines[p])
	}
	title := fmt.Sprintf("Reliability under churn, %d nodes, %d crashes and %d restarts (seed %d)", o.nodes, res.Crashes, res.Restarts, o.seed)
	return lineChart(o.out, name+".png", title, "simulated seconds", "reliability", ss, false)
}

func runOverlay(o options) error {
	fmt.Printf("== overlay shape: %d nodes, seed %d\n", o.nodes, o.seed)
	c := startClock()
	res, err := sim.Shape{Config: o.config(), Cluster: sim.Cluster{Nodes: o.nodes}}.Run()
	if err != nil {
		return err
	}
	wall, cpu := c.stop()
	ov := res.Overlay
	fmt.Printf("at the last join: %d components, the largest of %d nodes; one component for good %s after the last join (%d rejoins, %d mixes)\n",
		res.AtLastJoin, res.LargestAtLastJoin, afterLastJoin(res.OneComponent), res.Stats.Rejoins, res.Stats.Mixes)
	tw := newTable()
	fmt.Fprintln(tw, "nodes\tcomponents\tsymmetric\tmin degree\tmax degree\tfull views\tclustering\tavg shortest path\t")
	fmt.Fprintf(tw, "%d\t%d\t%v\t%d\t%d\t%d\t%.5f\t%.3f\t\n", ov.Nodes, ov.Components, ov.Symmetric, ov.MinDegree, ov.MaxDegree, ov.FullViews, ov.Clustering, ov.AvgShortestPath)
	tw.Flush()
	fmt.Printf("in-degree distribution: %v (index = in-degree); %v wall, %v CPU\n\n", ov.InDegree, wall.Round(1e6), cpu.Round(1e6))
	rows := [][]string{{"in_degree", "nodes"}}
	var labels []string
	bars := series{name: "nodes"}
	for d, n := range ov.InDegree {
		rows = append(rows, []string{strconv.Itoa(d), strconv.Itoa(n)})
		labels = append(labels, strconv.Itoa(d))
		bars.xys = append(bars.xys, plotter.XY{X: float64(d), Y: float64(n)})
	}
	rows = append(rows, []string{"clustering", f64(ov.Clustering)}, []string{"avg_shortest_path", f64(ov.AvgShortestPath)})
	name := fmt.Sprintf("overlay-%d", o.nodes)
	if err := writeCSV(o.out, name+".csv", rows); err != nil {
		return err
	}
	title := fmt.Sprintf("In-degree of the active-view graph, %d nodes (seed %d)", o.nodes, o.seed)
	return barChart(o.out, name+".png", title, "nodes", labels, []series{bars})
}

func afterLastJoin(d time.Duration) string {
	if d < 0 {
		return "never (still split at the end)"
	}
	return d.String()
}
