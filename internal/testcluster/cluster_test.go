package testcluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry"
)

func startNodes(t *testing.T, c *Cluster, count int) []string {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	var names []string
	for i := range count {
		name := fmt.Sprintf("n%d", i)
		if _, err := c.Start(name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func status(n *registry.Node, of string) membership.NodeStatus {
	for _, info := range n.Nodes() {
		if info.Name == of {
			return info.Status
		}
	}
	return 0
}

func hasMember(n *registry.Node, group, member string) bool {
	g, err := n.Default().Members(group)
	if err != nil {
		return false
	}
	for _, m := range g.Members {
		if m.ID == member {
			return true
		}
	}
	return false
}

// A partition cuts the overlay's links and silences memberlist: each side
// declares the other dead and drops its members, and after the heal the
// two sides find each other again with nobody calling join, and every
// member is back.
func TestPartitionIsRealToTheFailureDetector(t *testing.T) {
	t.Parallel()
	c := New(Config{Seed: 1, TimeScale: timeScale})
	names := startNodes(t, c, 4)
	if err := c.Node("n0").Default().Join("/svc", "a", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n3 sees n0's member", func() bool { return hasMember(c.Node("n3"), "/svc", "a") })

	c.Partition([]string{"n0"})
	took := waitFor(t, 15*time.Second, "n3 declares n0 dead and drops its member", func() bool {
		return status(c.Node("n3"), "n0") == membership.StatusDead && !hasMember(c.Node("n3"), "/svc", "a")
	})
	t.Logf("partitioned node declared dead and purged after %v", took)
	took = waitFor(t, 5*time.Second, "n0's overlay links across the partition go", func() bool {
		return len(c.Node("n0").Overlay().Active) == 0
	})
	t.Logf("n0's overlay links gone after another %v", took)
	if err := c.Node("n0").Default().Join("/svc", "b", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if hasMember(c.Node("n3"), "/svc", "b") {
		t.Fatal("a join made on the far side of the partition reached n3")
	}

	c.Heal()
	took = waitFor(t, 20*time.Second, "the heal brings n0's members back everywhere", func() bool {
		for _, name := range names {
			n := c.Node(name)
			if !hasMember(n, "/svc", "a") || !hasMember(n, "/svc", "b") || n.Summary() != c.Node("n0").Summary() {
				return false
			}
		}
		return true
	})
	t.Logf("converged %v after the heal", took)
}

// A killed node says nothing on its way out, but its sockets close: the
// others purge its members quickly (the overlay's peers confirm it gone
// with a refused dial), and it stays purged.
func TestKillPurgesWithoutALeave(t *testing.T) {
	t.Parallel()
	c := New(Config{Seed: 2, TimeScale: timeScale})
	startNodes(t, c, 4)
	for i := range 3 {
		if err := c.Node("n1").Default().Join("/svc", fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "n1's members reach n3", func() bool { return hasMember(c.Node("n3"), "/svc", "2") })
	start := time.Now()
	if err := c.Kill("n1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n1's members purged", func() bool {
		for _, name := range []string{"n0", "n2", "n3"} {
			if _, err := c.Node(name).Default().Members("/svc"); !errors.Is(err, registry.ErrNoSuchGroup) {
				return false
			}
		}
		return true
	})
	t.Logf("killed node's members purged everywhere %v after the kill", time.Since(start))
	for _, name := range []string{"n0", "n2", "n3"} {
		if st := status(c.Node(name), "n1"); st == membership.StatusLeft {
			t.Errorf("%s saw the killed node leave gracefully", name)
		}
	}
}

// A restarted node comes back under its name with a higher incarnation:
// its last life's members are gone everywhere and its new ones spread.
func TestRestartReplacesTheLastLife(t *testing.T) {
	t.Parallel()
	c := New(Config{Seed: 3, TimeScale: timeScale})
	startNodes(t, c, 3)
	if err := c.Node("n2").Default().Join("/svc", "old", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the join reaches n0", func() bool { return hasMember(c.Node("n0"), "/svc", "old") })
	before := c.Incarnation("n2")
	n2, err := c.Restart("n2")
	if err != nil {
		t.Fatal(err)
	}
	if c.Incarnation("n2") <= before {
		t.Fatalf("incarnation %d after a restart from %d", c.Incarnation("n2"), before)
	}
	if err := n2.Default().Join("/svc", "new", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n0 sees the new life only", func() bool {
		return hasMember(c.Node("n0"), "/svc", "new") && !hasMember(c.Node("n0"), "/svc", "old")
	})
}

// A node that refuted a death verdict runs under a newer incarnation than
// the one it started with; when it then dies, the verdict must name the
// newer one, or its members outlive it until the reaper's timeout.
func TestKillAfterARefutePurgesAtOnce(t *testing.T) {
	t.Parallel()
	c := New(Config{Seed: 4, TimeScale: timeScale, Tune: func(_ string, cfg *registry.Config) { cfg.Cluster.ReapAfter = time.Minute }})
	startNodes(t, c, 3)
	if err := c.Node("n2").Default().Join("/svc", "x", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n0 sees n2's member", func() bool { return hasMember(c.Node("n0"), "/svc", "x") })
	c.Partition([]string{"n2"})
	waitFor(t, 15*time.Second, "n0 rules n2 dead and drops its member", func() bool {
		return status(c.Node("n0"), "n2") == membership.StatusDead && !hasMember(c.Node("n0"), "/svc", "x")
	})
	c.Heal()
	waitFor(t, 20*time.Second, "n2 refutes and its member is back everywhere", func() bool {
		return hasMember(c.Node("n0"), "/svc", "x") && hasMember(c.Node("n1"), "/svc", "x") &&
			status(c.Node("n0"), "n2") == membership.StatusAlive && status(c.Node("n1"), "n2") == membership.StatusAlive
	})
	time.Sleep(time.Second) // let the refuted incarnation reach memberlist's metadata everywhere
	if err := c.Kill("n2"); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 5*time.Second, "the killed node's member purged", func() bool {
		return !hasMember(c.Node("n0"), "/svc", "x") && !hasMember(c.Node("n1"), "/svc", "x")
	})
	t.Logf("purged %v after the kill", took)
}
