package main

import (
	"fmt"
	"strconv"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/cpggo/cpg/sim"
)

func runFailure(o options) error {
	bcasts := o.after
	fmt.Printf("== massive failure: %d nodes, %d broadcasts after the failure, seed %d, latency %v, loss %v\n",
		o.nodes, bcasts, o.seed, o.latency, o.loss)
	tw := newTable()
	fmt.Fprintln(tw, "killed\tsurvivors\tconnected after\tviews full after\tlongest unlinked (live passive peer)\tsuch survivors\tlongest alone\trejoins\treconnects\tview merges\tfirst broadcast all delivered\tplumtree reliability per broadcast\t")
	rows := [][]string{{"fraction", "broadcast", "protocol", "eligible", "delivered", "reliability", "payload_messages", "rmr", "ldh"}}
	heal := [][]string{{"fraction", "killed", "survivors", "connected_s", "full_s", "longest_unlinked_s", "unlinked_survivors", "longest_alone_s"}}
	var relLines []series
	connected, full := series{name: "connected, symmetric"}, series{name: "views full"}
	var total sim.Stats
	var simTime time.Duration
	c := startClock()
	for _, f := range o.fractions {
		res, err := sim.MassFailure{
			Config: o.config(), Cluster: sim.Cluster{Nodes: o.nodes}, Fraction: f,
			Sources: o.sources, Broadcasts: bcasts, Interval: o.interval, Peers: o.peers,
		}.Run()
		if err != nil {
			return err
		}
		addStats(&total, res.Stats)
		simTime += res.SimTime
		first := -1
		rel := ""
		line := series{name: fmt.Sprintf("%.0f%% killed", f*100)}
		k := 0
		for _, r := range res.Results {
			if r.Protocol == sim.Plumtree {
				k++
				if r.Delivered == r.Eligible && first < 0 {
					first = k
				}
				if r.Delivered != r.Eligible {
					first = -1
				}
				rel += fmt.Sprintf("%.3f ", r.Reliability)
				line.xys = append(line.xys, plotter.XY{X: float64(k), Y: r.Reliability})
			}
			rows = append(rows, []string{f64(f), strconv.Itoa(k), r.Protocol.String(), strconv.Itoa(r.Eligible), strconv.Itoa(r.Delivered),
				f64(r.Reliability), strconv.Itoa(r.PayloadMessages), f64(r.RMR), strconv.Itoa(r.LDH)})
		}
		relLines = append(relLines, line)
		firstText := "never"
		if first > 0 {
			firstText = strconv.Itoa(first)
		}
		st := res.Stats
		fmt.Fprintf(tw, "%.0f%%\t%d\t%s\t%s\t%v\t%d\t%v\t%d\t%d\t%d\t%s\t%s\t\n", f*100, res.Survivors, since(res.Connected), since(res.Full),
			res.LongestUnlinked, res.Unlinked, res.LongestAlone, st.Rejoins, st.Reconnects, st.ViewMerges, firstText, rel)
		heal = append(heal, []string{f64(f), strconv.Itoa(res.Killed), strconv.Itoa(res.Survivors), secs(res.Connected), secs(res.Full),
			f64(res.LongestUnlinked.Seconds()), strconv.Itoa(res.Unlinked), f64(res.LongestAlone.Seconds())})
		if res.Connected >= 0 {
			connected.xys = append(connected.xys, plotter.XY{X: f * 100, Y: res.Connected.Seconds()})
		}
		if res.Full >= 0 {
			full.xys = append(full.xys, plotter.XY{X: f * 100, Y: res.Full.Seconds()})
		}
	}
	tw.Flush()
	wall, cpu := c.stop()
	printSpeed(total, simTime, wall, cpu)
	name := fmt.Sprintf("failure-%d", o.nodes)
	if err := writeCSV(o.out, name+".csv", rows); err != nil {
		return err
	}
	if err := writeCSV(o.out, name+"-healing.csv", heal); err != nil {
		return err
	}
	title := fmt.Sprintf("Broadcasts after a massive failure, %d nodes (seed %d)", o.nodes, o.seed)
	if err := lineChart(o.out, name+"-reliability.png", title, "broadcast after the failure (1 per "+intervalText(o.interval)+")", "Plumtree reliability", relLines, false); err != nil {
		return err
	}
	title = fmt.Sprintf("Overlay healing after a massive failure, %d nodes (seed %d)", o.nodes, o.seed)
	return lineChart(o.out, name+"-healing.png", title, "% of nodes killed at once", "seconds after the failure", []series{connected, full}, false)
}

func intervalText(d time.Duration) string {
	if d <= 0 {
		return "1s"
	}
	return d.String()
}

func since(d time.Duration) string {
	if d < 0 {
		return "not within limit"
	}
	return d.String()
}

func secs(d time.Duration) string {
	if d < 0 {
		return ""
	}
	return f64(d.Seconds())
}

func addStats(t *sim.Stats, s sim.Stats) {
	t.Events += s.Events
	t.Messages += s.Messages
	t.Lost += s.Lost
}
