package registry

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkPacedPropagation times one change at a time from Join on one
// node to applied on each of the others, between in-process nodes over
// loopback TCP, as cpgbench's paced W2 does between processes: one op is
// one join, made 2 ms after the last one was applied everywhere, so that
// no change waits behind another. It reports the latency on the observers
// from the moment Join returned (as pg's paced figure) and from the moment
// it was called, p50 and p99 over every (join, observer) pair.
//
//	go test ./registry/ -run '^$' -bench PacedPropagation -benchtime 3000x
func BenchmarkPacedPropagation(b *testing.B) {
	const nodes = 5
	cluster := startBenchCluster(b, nodes)
	watches := make([]*Watch, 0, nodes-1)
	for _, n := range cluster[1:] {
		w, err := n.Default().Watch("/paced/*", 1024)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(w.Close)
		watches = append(watches, w)
	}
	joiner := cluster[0].Default()
	var fromReturn, fromCall []time.Duration
	i := 0
	for b.Loop() {
		member := fmt.Sprintf("m-%d", i)
		i++
		called := time.Now()
		if err := joiner.Join("/paced/g", member, nil); err != nil {
			b.Fatal(err)
		}
		returned := time.Now()
		for _, w := range watches {
			ev := nextJoinOf(b, w, member)
			fromReturn = append(fromReturn, ev.Applied.Sub(returned))
			fromCall = append(fromCall, ev.Applied.Sub(called))
		}
		b.StopTimer()
		time.Sleep(2 * time.Millisecond)
		b.StartTimer()
	}
	slices.Sort(fromReturn)
	slices.Sort(fromCall)
	b.ReportMetric(micros(percentile(fromReturn, 50)), "p50-µs")
	b.ReportMetric(micros(percentile(fromReturn, 99)), "p99-µs")
	b.ReportMetric(micros(percentile(fromCall, 50)), "p50-from-call-µs")
	b.ReportMetric(micros(percentile(fromCall, 99)), "p99-from-call-µs")
}

// nextJoinOf waits for the watch's event of member's join.
func nextJoinOf(b *testing.B, w *Watch, member string) Event {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				b.Fatalf("watch ended: %v", w.Err())
			}
			if ev.Kind == EventJoin && ev.Member.ID == member {
				return ev
			}
		case <-timeout:
			b.Fatalf("the join of %s never reached an observer", member)
		}
	}
}

// startBenchCluster starts count nodes on loopback, each joining the
// first, and waits until every node's overlay has a link.
func startBenchCluster(b *testing.B, count int) []*Node {
	nodes := startClusterNodes(b, count)
	// Let the overlay settle (joins forwarded, views filled) before timing.
	time.Sleep(time.Second)
	return nodes
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
