package proctest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

const scope = "default"

func start(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(cfg)
	if errors.Is(err, ErrNoNamespaces) {
		t.Skip("partitions need network namespaces: run as root with iproute2 installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("log of %s:\n%s", n.Name, n.LogTail())
			}
		}
		c.Close()
	})
	return c
}

// populate joins perNode members on every node, each into one of a few
// groups, and waits until every node holds them all.
func populate(t *testing.T, c *Cluster, perNode int) {
	t.Helper()
	ctx := context.Background()
	for _, n := range c.Nodes {
		for i := range perNode {
			if err := n.Join(ctx, scope, fmt.Sprintf("/svc/%d", i%5), fmt.Sprintf("%s-m%d", n.Name, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := WaitMembers(c.Nodes, scope, perNode*len(c.Nodes), 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// A node killed with SIGKILL closes its sockets: the node that loses a
// link to it finds its port refused and tells everyone, so its members go
// everywhere long before the failure detector would rule (seconds under
// the LAN timings used here), and the survivors agree.
func TestKilledNodesMembersArePurgedEverywhere(t *testing.T) {
	c := start(t, Config{Nodes: 5})
	populate(t, c, 20)
	victim := c.Nodes[1]
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	survivors := c.Others(victim)
	took, err := WaitMembers(survivors, scope, 80, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed node's members purged on all 4 survivors after %v", took)
	if took > 2*time.Second {
		t.Errorf("purge took %v: the failure detector's verdict, not the closed connection, removed them", took)
	}
	if _, err := WaitConverged(survivors, scope, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// A node frozen with SIGSTOP keeps its sockets open: only the failure
// detector finds it, and its members go when it is declared dead. Resumed,
// it refutes the verdict and its members come back on every node without
// anyone calling join.
func TestStoppedNodeIsPurgedAndComesBackWhenResumed(t *testing.T) {
	c := start(t, Config{Nodes: 5, GossipProfile: "loopback"})
	populate(t, c, 20)
	testStopAndResume(t, c, 15*time.Second)
}

// The same under the default (LAN) timings: a hung node is purged within
// about five seconds.
func TestStoppedNodeIsPurgedUnderDefaultTimings(t *testing.T) {
	if testing.Short() {
		t.Skip("about 10 s under the LAN timings")
	}
	c := start(t, Config{Nodes: 5})
	populate(t, c, 20)
	testStopAndResume(t, c, 20*time.Second)
}

func testStopAndResume(t *testing.T, c *Cluster, within time.Duration) {
	t.Helper()
	victim := c.Nodes[2]
	if err := victim.Stop(); err != nil {
		t.Fatal(err)
	}
	survivors := c.Others(victim)
	took, err := WaitMembers(survivors, scope, 80, within)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped node's members purged on all 4 others after %v", took)
	if err := victim.Continue(); err != nil {
		t.Fatal(err)
	}
	back, err := WaitMembers(c.Nodes, scope, 100, within)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed node's members back everywhere after %v", back)
	if _, err := WaitConverged(c.Nodes, scope, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitAllAlive(c.Nodes, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Changes made on both sides of a partition reach the other side once it
// heals, with no one calling join: a short cut (shorter than the links'
// keepalive timeout) costs no link at all, a long one (nodes declared dead
// on the other side) is healed by the nodes retrying the members they saw
// fail.
func TestPartitionHealsWithoutManualReconnect(t *testing.T) {
	c := start(t, Config{Nodes: 5, Isolated: true, GossipProfile: "loopback"})
	populate(t, c, 10)
	ctx := context.Background()
	left, right := []int{0, 1}, []int{2, 3, 4}

	cut := func(round int, hold func()) time.Duration {
		t.Helper()
		if err := c.Partition(left, right); err != nil {
			t.Fatal(err)
		}
		// One join on each side, one leave on each side.
		mustDo(t, c.Nodes[0].Join(ctx, scope, "/svc/cut", fmt.Sprintf("left-%d", round)))
		mustDo(t, c.Nodes[3].Join(ctx, scope, "/svc/cut", fmt.Sprintf("right-%d", round)))
		mustDo(t, c.Nodes[1].Leave(ctx, scope, fmt.Sprintf("/svc/%d", round), fmt.Sprintf("n2-m%d", round)))
		mustDo(t, c.Nodes[4].Leave(ctx, scope, fmt.Sprintf("/svc/%d", round), fmt.Sprintf("n5-m%d", round)))
		hold()
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		took, err := WaitConverged(c.Nodes, scope, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return took
	}

	took := cut(0, func() { time.Sleep(300 * time.Millisecond) })
	t.Logf("short partition (300 ms): converged %v after healing", took)
	took = cut(1, func() {
		if _, err := WaitStatus(c.Nodes[:1], "n3", "dead", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := WaitStatus(c.Nodes[2:3], "n1", "dead", 20*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("long partition (each side declared the other dead): converged %v after healing", took)
	// Each cut joined two members and took two away: 50 in all, the
	// members of the nodes each side declared dead among them.
	if _, err := WaitMembers(c.Nodes, scope, 50, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// SIGTERM makes a node leave: its members go from the others at once, and
// it exits with status 0.
func TestTerminatedNodeLeavesGracefully(t *testing.T) {
	c := start(t, Config{Nodes: 3})
	populate(t, c, 10)
	victim := c.Nodes[2]
	if err := victim.Terminate(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	took, err := WaitMembers(c.Others(victim), scope, 20, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("left node's members gone from the others %v after it exited", took)
	if took > time.Second {
		t.Errorf("members went after %v: the leave did not reach the others", took)
	}
}

// One cluster of five goes through all three in turn: a node killed, then
// another hung and resumed, then a partition of the three survivors left
// of it, healed; after each the live nodes agree and hold exactly the live
// nodes' members, and the killed node's never come back.
func TestKillStopAndPartitionInOneCluster(t *testing.T) {
	c := start(t, Config{Nodes: 5, Isolated: true, GossipProfile: "loopback"})
	populate(t, c, 10)
	ctx := context.Background()
	killed, hung := c.Nodes[1], c.Nodes[2]

	mustDo(t, killed.Kill())
	live := c.Others(killed)
	if _, err := WaitMembers(live, scope, 40, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	mustDo(t, hung.Stop())
	if _, err := WaitMembers(c.Others(killed, hung), scope, 30, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	mustDo(t, hung.Continue())
	if _, err := WaitMembers(live, scope, 40, 15*time.Second); err != nil {
		t.Fatal(err)
	}

	// Node indexes: 0, 2, 3, 4 are alive; cut {0, 2} from {3, 4}.
	mustDo(t, c.Partition([]int{0, 2}, []int{3, 4, 1}))
	mustDo(t, c.Nodes[0].Join(ctx, scope, "/svc/cut", "left"))
	mustDo(t, c.Nodes[4].Join(ctx, scope, "/svc/cut", "right"))
	if _, err := WaitStatus(c.Nodes[:1], c.Nodes[3].Name, "dead", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	mustDo(t, c.Heal())
	took, err := WaitConverged(live, scope, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WaitMembers(live, scope, 42, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("after the kill, the stop and the partition: converged %v after healing", took)
	for _, n := range live {
		members, err := n.Members(ctx, scope, "/svc/0")
		mustDo(t, err)
		for _, m := range members {
			if m.Node == killed.Name {
				t.Errorf("%s lists %s of the killed node", n.Name, m.ID)
			}
		}
	}
}
