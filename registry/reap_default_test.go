package registry

import (
	"testing"
	"time"

	"github.com/cpggo/cpg/membership"
)

// A node that missed the gossip announcing a newcomer learns of it only at
// its failure detector's next full-state exchange, while the newcomer's
// entries already reach it by the broadcast. The reaper must not give up
// on such an owner before two exchanges could have told of it: with the
// LAN timings (an exchange every 30 s) it waited 30 s and raced the
// exchange, and could tombstone a live node's entries.
func TestTheReaperWaitsForTwoFullStateExchanges(t *testing.T) {
	for _, g := range []struct {
		name   string
		gossip membership.GossipConfig
	}{{"lan", membership.GossipConfig{}}, {"loopback", membership.LoopbackGossipConfig()}} {
		n, err := New(Config{Name: "n", Cluster: &ClusterConfig{Key: clusterKey, Membership: membership.NodeConfig{Gossip: g.gossip}}})
		if err != nil {
			t.Fatal(err)
		}
		exchange := g.gossip.PushPullInterval
		if exchange == 0 {
			exchange = membership.DefaultGossipConfig().PushPullInterval
		}
		got := n.cluster.cfg.ReapAfter
		n.Close()
		if got < 2*exchange || got < 30*time.Second {
			t.Errorf("%s: owners go after %v, want at least two exchanges (%v) and 30 s", g.name, got, 2*exchange)
		}
	}
}
