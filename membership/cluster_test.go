package membership

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// overlayState checks the active-view graph of the live nodes: every view
// within bounds and free of dead or self entries, every link symmetric, the
// graph connected, and at most maxShort views below ActiveSize. (A view can
// be one short for good: with an odd number of nodes, views of odd size
// cannot all be full, since every link counts at both ends.) It returns a
// description of the first problem, or "".
func overlayState(nodes []*Node, minActive, maxShort int) string {
	live := make(map[string]*Node, len(nodes))
	for _, n := range nodes {
		live[n.Self().Name] = n
	}
	views := make(map[string]map[string]bool, len(nodes))
	for _, n := range nodes {
		v := make(map[string]bool)
		for _, p := range n.Active() {
			v[p.Name] = true
		}
		views[n.Self().Name] = v
	}
	short := 0
	for name, v := range views {
		size := live[name].cfg.HyParView.ActiveSize
		if len(v) < size {
			short++
		}
		if len(v) < minActive || len(v) > size {
			return fmt.Sprintf("%s has %d active peers, want %d..%d", name, len(v), minActive, size)
		}
		for p := range v {
			if p == name {
				return fmt.Sprintf("%s has itself in its active view", name)
			}
			if live[p] == nil {
				return fmt.Sprintf("%s still has dead %s in its active view", name, p)
			}
			if !views[p][name] {
				return fmt.Sprintf("asymmetric: %s has %s active, not the reverse", name, p)
			}
		}
	}
	if short > maxShort {
		return fmt.Sprintf("%d active views are not full, want at most %d", short, maxShort)
	}
	// Connectivity: a walk from any node reaches all.
	var start string
	for name := range views {
		start = name
		break
	}
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for p := range views[cur] {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	if len(seen) != len(views) {
		return fmt.Sprintf("overlay split: %d of %d nodes reachable from %s", len(seen), len(views), start)
	}
	return ""
}

func describeViews(nodes []*Node) string {
	var b strings.Builder
	sorted := append([]*Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Self().Name < sorted[j].Self().Name })
	for _, n := range sorted {
		fmt.Fprintf(&b, "  %s: active=%v passive=%d\n", n.Self().Name, names(n.Active()), len(n.Passive()))
	}
	return b.String()
}

// waitOverlay polls until overlayState reports no problem.
func waitOverlay(t *testing.T, nodes []*Node, minActive, maxShort int, within time.Duration) time.Duration {
	t.Helper()
	within *= testTimeScale
	start := time.Now()
	deadline := start.Add(within)
	for {
		problem := overlayState(nodes, minActive, maxShort)
		if problem == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s\n%s", within, problem, describeViews(nodes))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCluster starts count nodes and joins each through a random earlier
// one.
func startCluster(t *testing.T, count int) []*Node {
	t.Helper()
	nodes := make([]*Node, 0, count)
	for i := range count {
		cfg := testNodeConfig(fmt.Sprintf("n%02d", i))
		cfg.Seed = int64(i + 1)
		n := startNode(t, cfg)
		if i > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeScale*10*time.Second)
			err := n.Join(ctx, nodes[(i*7)%i].GossipAddr())
			cancel()
			if err != nil {
				t.Fatalf("%s join: %v", cfg.Name, err)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func TestClusterFormsAndHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("20-node cluster on loopback")
	}
	const total, killed = 20, 5
	nodes := startCluster(t, total)
	size := nodes[0].cfg.HyParView.ActiveSize
	formed := waitOverlay(t, nodes, size-1, 2, 20*time.Second)
	t.Logf("%d nodes: connected, symmetric, active views full (%d, at most two views one short) %v after the last join", total, size, formed.Round(time.Millisecond))

	// Crash five nodes: no leave, sockets just closed.
	crashed := time.Now()
	for _, n := range nodes[:killed] {
		n.shutdown(false)
	}
	survivors := nodes[killed:]
	keepAlive := survivors[0].cfg.KeepAlive
	waitOverlay(t, survivors, size-1, 3, 40*keepAlive)
	healed := time.Since(crashed)
	t.Logf("after crashing %d: survivors connected, symmetric, views full again (at most three views one short) %v after the first crash (%.1f keepalive periods)",
		killed, healed.Round(time.Millisecond), float64(healed)/float64(keepAlive))
}

// TestClusterRefusesStrangers starts nodes with the wrong cluster key and
// with another cluster label: memberlist refuses their join, the overlay
// refuses their connections with a clear error, and they never appear in
// any view of the cluster.
func TestClusterRefusesStrangers(t *testing.T) {
	good := startCluster(t, 3)
	waitOverlay(t, good, 2, len(good), 10*time.Second)

	wrongKey := testNodeConfig("intruder-key")
	wrongKey.ClusterKey = []byte("fedcba9876543210fedcba9876543210")
	otherLabel := testNodeConfig("intruder-label")
	otherLabel.ClusterLabel = "another-cluster"
	noKey := testNodeConfig("intruder-nokey")
	noKey.ClusterKey = nil
	cases := []struct {
		cfg  NodeConfig
		want error
	}{
		{wrongKey, ErrClusterKey},
		{otherLabel, ErrClusterLabel},
		{noKey, ErrClusterKey},
	}
	var strangers []*Node
	for _, c := range cases {
		s := startNode(t, c.cfg)
		strangers = append(strangers, s)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := s.Join(ctx, good[0].GossipAddr())
		cancel()
		if err == nil {
			t.Fatalf("%s joined the cluster", c.cfg.Name)
		}
		t.Logf("%s: join refused: %v", c.cfg.Name, err)

		// Bypass memberlist: dial the overlay directly, and ask the core
		// to JOIN through a cluster member.
		_, _, err = s.dial(good[1].Self(), false)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: overlay dial error %v, want %v", c.cfg.Name, err, c.want)
		}
		s.input(coreInput{kind: inputJoin, peer: good[2].Self()})
	}
	// Give the refused JOINs time to have done harm, had they got in.
	time.Sleep(20 * good[0].cfg.TickInterval)
	for _, n := range good {
		for _, s := range strangers {
			name := s.Self().Name
			if containsPeer(n.Active(), name) || containsPeer(n.Passive(), name) {
				t.Fatalf("%s has stranger %s in a view: active %v passive %v", n.Self().Name, name, names(n.Active()), names(n.Passive()))
			}
			for _, m := range n.Members() {
				if m.Name == name {
					t.Fatalf("%s lists stranger %s as a member", n.Self().Name, name)
				}
			}
		}
	}
	for _, s := range strangers {
		if len(s.Active()) != 0 {
			t.Fatalf("stranger %s got links: %v", s.Self().Name, names(s.Active()))
		}
	}
	if problem := overlayState(good, 2, len(good)); problem != "" {
		t.Fatalf("cluster disturbed by strangers: %s", problem)
	}
}
