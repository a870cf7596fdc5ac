package main

import (
	"fmt"
	"strconv"

	"gonum.org/v1/plot/plotter"

	"github.com/cpggo/cpg/sim"
)

func protocols(peers bool) []sim.Protocol {
	if peers {
		return []sim.Protocol{sim.Plumtree, sim.Flood, sim.Gossip}
	}
	return []sim.Protocol{sim.Plumtree}
}

func runSteady(o options) error {
	fmt.Printf("== steady state: %d nodes, %d sources, %d broadcasts, seed %d, latency %v, loss %v\n",
		o.nodes, o.sources, o.broadcasts, o.seed, o.latency, o.loss)
	c := startClock()
	res, err := sim.Steady{
		Config: o.config(), Cluster: sim.Cluster{Nodes: o.nodes},
		Broadcasts: o.broadcasts, Sources: o.sources, Interval: o.interval, Peers: o.peers,
	}.Run()
	if err != nil {
		return err
	}
	wall, cpu := c.stop()
	ov := res.Overlay
	fmt.Printf("overlay: %d nodes, %d component(s), symmetric %v, active views %d..%d (%d full)\n",
		ov.Nodes, ov.Components, ov.Symmetric, ov.MinDegree, ov.MaxDegree, ov.FullViews)
	printSummaries("first broadcast of each source (Plumtree builds its tree)", res.Warmup, o.peers)
	sums := printSummaries("measured broadcasts", res.Results, o.peers)
	u, k := res.Upkeep, float64(o.broadcasts)
	fmt.Printf("tree upkeep over the measured broadcasts: %d IHAVE, %d GRAFT, %d PRUNE messages (%.1f, %.1f, %.1f per broadcast); %d optimisations\n",
		u.IHaves, u.Grafts, u.Prunes, float64(u.IHaves)/k, float64(u.Grafts)/k, float64(u.Prunes)/k, u.Optimizations)
	if o.peers {
		pt := sums[0].Payload
		fmt.Printf("payload messages per broadcast against Plumtree: flood %.2fx, gossip %.2fx\n", sums[1].Payload/pt, sums[2].Payload/pt)
	}
	printSpeed(res.Stats, res.SimTime, wall, cpu)

	rows := [][]string{{"phase", "protocol", "id", "source", "eligible", "delivered", "reliability", "payload_messages", "rmr", "ldh", "shortest_depth", "latency_ms"}}
	add := func(phase string, rs []sim.BroadcastResult) {
		for _, r := range rs {
			rows = append(rows, []string{phase, r.Protocol.String(), strconv.Itoa(r.ID), strconv.Itoa(r.Source),
				strconv.Itoa(r.Eligible), strconv.Itoa(r.Delivered), f64(r.Reliability), strconv.Itoa(r.PayloadMessages),
				f64(r.RMR), strconv.Itoa(r.LDH), strconv.Itoa(r.ShortestDepth), f64(r.Latency.Seconds() * 1000)})
		}
	}
	add("warmup", res.Warmup)
	add("measured", res.Results)
	name := fmt.Sprintf("steady-%d-%d", o.nodes, o.broadcasts)
	if err := writeCSV(o.out, name+".csv", rows); err != nil {
		return err
	}
	// Chart: payload messages per broadcast and LDH against the shortest
	// depth, per protocol.
	var labels []string
	payload, ldh, depth := series{name: "payload msgs/broadcast"}, series{name: "LDH (mean)"}, series{name: "shortest-path depth (mean)"}
	for k, s := range sums {
		labels = append(labels, s.Protocol.String())
		payload.xys = append(payload.xys, plotter.XY{X: float64(k), Y: s.Payload})
		ldh.xys = append(ldh.xys, plotter.XY{X: float64(k), Y: s.LDH})
		d := meanDepth(res.Results, s.Protocol)
		depth.xys = append(depth.xys, plotter.XY{X: float64(k), Y: d})
	}
	title := fmt.Sprintf("Steady state, %d nodes, %d broadcasts (seed %d)", o.nodes, o.broadcasts, o.seed)
	if err := barChart(o.out, name+"-payload.png", title, "payload messages per broadcast", labels, []series{payload}); err != nil {
		return err
	}
	return barChart(o.out, name+"-ldh.png", title, "hops", labels, []series{ldh, depth})
}

func meanDepth(rs []sim.BroadcastResult, p sim.Protocol) float64 {
	var sum float64
	var n int
	for _, r := range rs {
		if r.Protocol == p {
			sum += float64(r.ShortestDepth)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func printSummaries(title string, rs []sim.BroadcastResult, peers bool) []sim.Summary {
	fmt.Printf("-- %s\n", title)
	tw := newTable()
	fmt.Fprintln(tw, "protocol\tbroadcasts\treliability\tmin\tall delivered\tRMR\tmax RMR\tLDH\tmax LDH\tLDH/depth\tmax LDH/depth\tpayload/bcast\tlast delivery\t")
	var sums []sim.Summary
	for _, p := range protocols(peers) {
		s := sim.Summarize(p, rs)
		sums = append(sums, s)
		fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%d\t%.4f\t%.4f\t%.2f\t%d\t%.3f\t%.3f\t%.1f\t%v\t\n",
			p, s.Broadcasts, s.Reliability, s.MinReliability, s.AllDelivered, s.RMR, s.MaxRMR, s.LDH, s.MaxLDH,
			s.DepthRatio, s.MaxDepthRatio, s.Payload, s.Latency.Round(100_000))
	}
	tw.Flush()
	return sums
}
