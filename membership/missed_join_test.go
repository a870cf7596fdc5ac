package membership

import (
	"context"
	"testing"
	"time"
)

// Gossip can miss a node's join announcement, and memberlist repairs that
// only at its next full-state exchange (every 30 s with the LAN timings),
// while the newcomer is already an overlay neighbour. Here no gossip ever
// goes out, so c hears of b only from b itself, over the overlay: c must
// then ask a member it knows for the full state instead of leaving b out
// of its list.
func TestAnOverlayNeighbourMemberlistMissedIsLearnedAtOnce(t *testing.T) {
	silent := func(name string) NodeConfig {
		cfg := testNodeConfig(name)
		cfg.Gossip.GossipInterval = time.Hour
		cfg.Gossip.ProbeInterval = time.Hour
		cfg.Gossip.PushPullInterval = time.Hour
		return cfg
	}
	a := startNode(t, silent("a"))
	c := startNode(t, silent("c"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatalf("c joins: %v", err)
	}
	b := startNode(t, silent("b"))
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatalf("b joins: %v", err)
	}
	waitFor(t, 5*time.Second, "the overlay did not link b and c", func() bool {
		return containsPeer(c.Active(), "b")
	})
	waitFor(t, 5*time.Second, "c's memberlist never heard of its overlay neighbour b", func() bool {
		info, ok := c.table.get("b")
		return ok && info.Status == StatusAlive
	})
}
