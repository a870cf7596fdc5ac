package registry

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/registry/replication"
)

// The burst of issue 11's W2, between nodes of one process over loopback
// TCP: node 0 makes 2,000 joins back to back, into one group or into 200,
// and the benchmark waits until every other node has applied all of them.
// Each run starts a fresh cluster, as W2's trials start fresh processes,
// so the first broadcasts find the tree of node 0 still all eager.
const (
	burstNodes = 5
	burstJoins = 2000
)

func BenchmarkBurstOneGroup(b *testing.B) {
	benchmarkBurst(b, func(int) string { return "/bench/one" })
}

func BenchmarkBurst200Groups(b *testing.B) {
	groups := make([]string, 200)
	for i := range groups {
		groups[i] = fmt.Sprintf("/bench/%d", i)
	}
	benchmarkBurst(b, func(i int) string { return groups[i%len(groups)] })
}

func benchmarkBurst(b *testing.B, group func(i int) string) {
	members := make([]string, burstJoins)
	for i := range members {
		members[i] = fmt.Sprintf("m%d", i)
	}
	// Medians: on a shared machine one run in a few stalls behind other
	// work, and a mean would report the stall.
	var visible, joined, cpu []time.Duration
	for b.Loop() {
		b.StopTimer()
		nodes := startBurstCluster(b)
		joiner, observers := nodes[0], nodes[1:]
		_, base := joiner.state.Self()
		s := joiner.Default()
		want := base.Seq + burstJoins
		b.StartTimer()
		cpuBefore := processCPU()
		start := time.Now()
		for i := range burstJoins {
			if err := s.Join(group(i), members[i], nil); err != nil {
				b.Fatal(err)
			}
		}
		joined = append(joined, time.Since(start))
		for _, o := range observers {
			for o.appliedSeq(joiner.name) < want {
				if time.Since(start) > 30*time.Second {
					b.Fatalf("%s applied %d of %d joins within 30 s", o.name, o.appliedSeq(joiner.name)-base.Seq, burstJoins)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		visible = append(visible, time.Since(start))
		cpu = append(cpu, processCPU()-cpuBefore)
		b.StopTimer()
		for _, n := range nodes {
			n.Close()
		}
		b.StartTimer()
	}
	b.ReportMetric(medianMillis(visible), "ms-all-applied-p50")
	b.ReportMetric(medianMillis(joined), "ms-joins-p50")
	// The CPU the whole process (the five nodes) spent from the first join
	// until the last node applied the last: on a loaded machine the wall
	// time above waits for other work too, this does much less.
	b.ReportMetric(medianMillis(cpu), "ms-cpu-p50")
}

func medianMillis(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// appliedSeq is how far this node has applied owner's ops.
func (n *Node) appliedSeq(owner string) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, _ := n.state.Owner(owner)
	return v.Seq
}

// startBurstCluster starts the nodes, each joining the first, and returns
// once each has a member every other node sees: the overlay is up.
func startBurstCluster(b testing.TB) []*Node {
	b.Helper()
	nodes := startClusterNodes(b, burstNodes)
	// As W2 does, every node but the joiner joins a member of its own.
	for _, n := range nodes[1:] {
		if err := n.Default().Join("/ready", "ready-"+n.name, nil); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			g, err := n.Default().Members("/ready")
			if err == nil && len(g.Members) == burstNodes-1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s does not see every ready member within 20 s", n.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nodes
}

// BenchmarkApplyBurst is an observer's share of the burst without the
// network: a node merges the 2,000 joins of another owner as the batches
// the joiner's flusher makes of them (decode, CRDT, index), and, watched,
// keeps each change in its scope's journal for a subscription, as a cpgd
// agent with a watch stream open does (the stream's reading is not
// counted).
func BenchmarkApplyBurst(b *testing.B) {
	for _, v := range []struct {
		name    string
		groups  int
		watched bool
	}{{"one_group", 1, false}, {"groups_200", 200, false}, {"one_group_watched", 1, true}, {"groups_200_watched", 200, true}} {
		b.Run(v.name, func(b *testing.B) {
			owner := crdt.New(crdt.Config{Self: "joiner", Incarnation: 1})
			ops := make([]crdt.Op, burstJoins)
			for i := range ops {
				ops[i] = owner.LocalJoin(DefaultScope, fmt.Sprintf("/bench/%d", i%v.groups), fmt.Sprintf("m%d", i), 1, nil, int64(i))
			}
			batches := replication.Batches(ops, maxBatchBytes)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				n, err := New(Config{Name: "observer", WatchBuffer: 4 * burstJoins})
				if err != nil {
					b.Fatal(err)
				}
				if v.watched {
					if _, err := n.Default().Subscribe("/bench/*", SubscribeOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				rep := replication.New(n.state, replication.Config{})
				b.StartTimer()
				for _, bt := range batches {
					n.mu.Lock()
					n.holdRecords()
					verdict, _ := rep.Merge("joiner", bt.ID, bt.Payload)
					n.releaseRecords()
					n.mu.Unlock()
					if verdict != plumtree.New {
						b.Fatalf("batch %x: %v", bt.ID, verdict)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burstJoins), "ns/join")
		})
	}
}
