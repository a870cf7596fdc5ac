package registry

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cpggo/cpg/membership"
)

var clusterKey = []byte("0123456789abcdef")

// startClusterNodes starts count nodes on loopback, each joining the first.
func startClusterNodes(t testing.TB, count int) []*Node {
	t.Helper()
	nodes := make([]*Node, 0, count)
	for i := range count {
		cc := &ClusterConfig{Key: clusterKey, Membership: membership.NodeConfig{Gossip: membership.LoopbackGossipConfig()}}
		if i > 0 {
			cc.Join = []string{nodes[0].GossipAddr()}
		}
		n, err := New(Config{Name: fmt.Sprintf("node-%d", i), Cluster: cc})
		if err != nil {
			t.Fatalf("start node %d: %v", i, err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	return nodes
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func converged(nodes []*Node) bool {
	first := nodes[0].Summary()
	for _, n := range nodes[1:] {
		if n.Summary() != first {
			return false
		}
	}
	return true
}

// Nodes of a cluster replicate each other's members over the overlay: a
// join on one node is seen, with its metadata, by the others' lookups and
// watches.
func TestClusterReplicatesJoinsAndLeaves(t *testing.T) {
	nodes := startClusterNodes(t, 3)
	w, err := nodes[2].Default().Watch("/svc/*", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, n := range nodes {
		if err := n.Default().Join("/svc/db", fmt.Sprintf("db-%d", i), Meta{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	took := waitUntil(t, 10*time.Second, "every node sees three members", func() bool {
		for _, n := range nodes {
			g, err := n.Default().Members("/svc/db")
			if err != nil || len(g.Members) != 3 {
				return false
			}
		}
		return converged(nodes)
	})
	t.Logf("three joins visible everywhere after %v", took)
	g, _ := nodes[1].Default().Members("/svc/db")
	for _, m := range g.Members {
		if m.Meta["i"] != m.ID[len("db-"):] {
			t.Errorf("member %s carries meta %v", m.ID, m.Meta)
		}
	}
	if err := nodes[0].Default().Leave("/svc/db", "db-0"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the leave reaches every node", func() bool {
		for _, n := range nodes {
			if g, err := n.Default().Members("/svc/db"); err != nil || len(g.Members) != 2 {
				return false
			}
		}
		return true
	})
	seen := map[string]int{}
	timeout := time.After(5 * time.Second)
	for seen["join"] < 3 || seen["leave"] < 1 {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			seen[ev.Kind.String()]++
		case <-timeout:
			t.Fatalf("the watch on node-2 saw %v, want 3 joins and a leave", seen)
		}
	}
}

// A node that closes tells the others: its members vanish everywhere at
// once, not after the failure detector's timeouts.
func TestCloseRemovesMembersEverywhereAtOnce(t *testing.T) {
	nodes := startClusterNodes(t, 3)
	for i := range 5 {
		if err := nodes[0].Default().Join("/svc/api", fmt.Sprintf("api-%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "the joins reach every node", func() bool { return converged(nodes) })
	if _, err := nodes[1].Default().Members("/svc/api"); err != nil {
		t.Fatalf("node-1 does not see node-0's members: %v", err)
	}
	start := time.Now()
	if err := nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, 2*time.Second, "node-0's members leave the others", func() bool {
		for _, n := range nodes[1:] {
			if _, err := n.Default().Members("/svc/api"); err == nil {
				return false
			}
		}
		return true
	})
	t.Logf("members gone everywhere %v after Close returned (Close took %v)", took, time.Since(start)-took)
}

// In a cluster the closest and furthest picks measure distance by the
// overlay's own round trips (Config.RTT defaults to them): a node linked to
// another has a measurement of it, none of a node outside the cluster, and
// the closest pick answers with the remote member it measured.
func TestClosestPickUsesTheOverlaysRoundTrips(t *testing.T) {
	nodes := startClusterNodes(t, 2)
	if err := nodes[1].Default().Join("/svc/near", "b", nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "node-0 measures its link to node-1", func() bool {
		_, ok := nodes[0].cfg.RTT("node-1")
		return ok
	})
	waitUntil(t, 10*time.Second, "the join reaches node-0", func() bool {
		_, err := nodes[0].Default().Members("/svc/near")
		return err == nil
	})
	if _, ok := nodes[0].cfg.RTT("nobody"); ok {
		t.Fatal("a measurement of a node that is not in the cluster")
	}
	_, m, err := nodes[0].Default().Pick("/svc/near", Closest)
	if err != nil || m.ID != "b" {
		t.Fatalf("closest pick from node-0: %v %v", m, err)
	}
}

// The overlay a node reports splits its active peers, every one of them,
// into the eager and lazy peers of its own broadcast tree.
func TestOverlaySplitsActivePeersIntoEagerAndLazy(t *testing.T) {
	nodes := startClusterNodes(t, 3)
	if err := nodes[0].Default().Join("/svc/db", "db-0", nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the join reaches every node", func() bool { return converged(nodes) })
	for _, n := range nodes {
		o := n.Overlay()
		var active []string
		for _, p := range o.Active {
			active = append(active, p.Name)
		}
		split := append(slices.Clone(o.Eager), o.Lazy...)
		slices.Sort(active)
		slices.Sort(split)
		if len(active) == 0 || !slices.Equal(active, split) {
			t.Errorf("%s: active %v, eager %v + lazy %v", n.Name(), active, o.Eager, o.Lazy)
		}
	}
}
