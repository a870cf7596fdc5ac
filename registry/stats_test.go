package registry

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership"
)

func TestStatsOfANodeOnItsOwn(t *testing.T) {
	n, err := New(Config{Name: "a"})
	require.NoError(t, err)
	defer n.Close()
	db, err := n.Scope("db")
	require.NoError(t, err)
	web := n.Default()
	require.NoError(t, db.Join("/pg", "p1", nil))
	require.NoError(t, db.Join("/pg", "p2", nil))
	require.NoError(t, db.Join("/pg", "p2", nil)) // counted: still one member
	require.NoError(t, db.Join("/redis", "r1", nil))
	require.NoError(t, web.Join("/www", "w1", nil))
	require.NoError(t, web.Join("/api/*", "w1", nil))
	require.NoError(t, web.SetMeta("/www", "w1", Meta{"v": "2"}))
	require.NoError(t, web.Leave("/api/*", "w1"))
	_, err = n.Scope("empty") // a scope without groups is not listed
	require.NoError(t, err)

	st := n.Stats()
	require.Equal(t, []ScopeStats{{Name: "db", Groups: 2, Members: 3}, {Name: "default", Groups: 1, Members: 1}}, st.Scopes)
	require.Equal(t, ChangeCounts{Joins: 6, Leaves: 1, Metas: 1}, st.Local)
	require.Zero(t, st.Remote)
	require.Nil(t, st.Cluster)
}

// A cluster node counts the other nodes' changes as remote, and reports its
// overlay peers and the broadcast that carried the changes.
func TestStatsOfAClusterNode(t *testing.T) {
	nodes := startClusterNodes(t, 2)
	for _, m := range []string{"m1", "m2", "m3"} {
		require.NoError(t, nodes[0].Default().Join("/svc", m, nil))
	}
	require.NoError(t, nodes[0].Default().Leave("/svc", "m3"))
	waitUntil(t, 10*time.Second, "both nodes converge", func() bool { return converged(nodes) })

	st := nodes[1].Stats()
	require.Equal(t, ChangeCounts{Joins: 3, Leaves: 1}, st.Remote)
	require.Zero(t, st.Local)
	require.Equal(t, []ScopeStats{{Name: "default", Groups: 1, Members: 2}}, st.Scopes)
	require.NotNil(t, st.Cluster)
	require.Len(t, st.Cluster.Active, 1)
	require.Equal(t, "node-0", st.Cluster.Active[0].Name)
	require.Equal(t, 2, st.Cluster.Nodes[membership.StatusAlive])
	require.NotZero(t, st.Cluster.Replication.Applied)

	sender := nodes[0].Stats().Cluster
	require.NotZero(t, sender.Broadcast.Sent[plumtree.MsgGossip], "the joins went out as gossip")
	require.Equal(t, ChangeCounts{Joins: 3, Leaves: 1}, nodes[0].Stats().Local)
}

func TestRMRIsRedundantPayloadsPerDelivery(t *testing.T) {
	var c ClusterStats
	_, ok := c.RMR()
	require.False(t, ok, "nothing delivered yet")
	c.Broadcast.Delivered = 4
	c.Broadcast.Received[plumtree.MsgGossip] = 6
	rmr, ok := c.RMR()
	require.True(t, ok)
	require.InDelta(t, 0.5, rmr, 1e-9)
}

// What a scrape costs the node: Stats walks every group under the lock
// (go test -bench Stats -run XXX ./registry/).
func BenchmarkStats100kGroups(b *testing.B) {
	n, err := New(Config{Name: "a"})
	require.NoError(b, err)
	defer n.Close()
	s := n.Default()
	for i := range 1_000_000 {
		require.NoError(b, s.Join("/svc/"+strconv.Itoa(i%100_000), "m"+strconv.Itoa(i), nil))
	}
	b.ResetTimer()
	for b.Loop() {
		if st := n.Stats(); st.Scopes[0].Members != 1_000_000 {
			b.Fatal(st.Scopes)
		}
	}
}
