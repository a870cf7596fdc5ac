package registry

import (
	"time"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry/replication"
)

// Stats is what a node counts, read in one call: what an operator's
// metrics and status pages show. Node.Stats gathers it when asked, so
// nothing on the path of a join or a lookup pays for it.
type Stats struct {
	// Scopes holds the scopes that hold groups, sorted by name.
	Scopes []ScopeStats
	// Local counts the changes this node made to its own members since it
	// started; Remote the changes to other nodes' members it applied (from
	// broadcasts and anti-entropy alike).
	Local, Remote ChangeCounts
	// Cluster is nil for a node on its own.
	Cluster *ClusterStats
}

// ScopeStats sizes one scope, as Scope.Size does.
type ScopeStats struct {
	Name string
	// Groups counts stored group names and patterns; Members the members
	// in them (a member of two groups counts twice).
	Groups, Members int
}

// ChangeCounts counts changes to members' entries by kind. A join of a
// member already joined (its count goes up) is a join.
type ChangeCounts struct {
	Joins, Leaves, Metas uint64
}

// count adds one change of the given kind.
func (c *ChangeCounts) count(kind crdt.ChangeKind) {
	switch kind {
	case crdt.Joined:
		c.Joins++
	case crdt.Left:
		c.Leaves++
	case crdt.MetaChanged:
		c.Metas++
	}
}

// changeCounter counts the changes the crdt reports, by origin.
type changeCounter struct {
	local, remote ChangeCounts
}

// note counts one change; self is this node's name. n.mu is held.
func (cc *changeCounter) note(c *crdt.Change, self string) {
	if c.Owner == self {
		cc.local.count(c.Kind)
	} else {
		cc.remote.count(c.Kind)
	}
}

// ClusterStats is what the cluster's layers count on this node.
type ClusterStats struct {
	// Broadcast holds Plumtree's counters: messages sent and received by
	// type, deliveries, duplicates, grafts.
	Broadcast broadcast.NodeStats
	// Replication holds the replication core's counters.
	Replication replication.Stats
	// Active lists the overlay's active peers with the smoothed round-trip
	// time of the link to each (zero until the first keepalive answers).
	Active []PeerRTT
	// Passive is the size of the passive view.
	Passive int
	// Nodes counts the cluster's nodes, this one included, by the status
	// this node's failure detector gives them.
	Nodes map[membership.NodeStatus]int
}

// PeerRTT is an active overlay peer and the round-trip time of its link.
type PeerRTT struct {
	Name string
	RTT  time.Duration
}

// RMR estimates the broadcast's relative message redundancy as this node
// sees it: payload messages received per payload delivered, minus one (0
// when every payload arrived once; the Plumtree paper's measure, taken at
// one node). ok is false until a payload was delivered.
func (c *ClusterStats) RMR() (rmr float64, ok bool) {
	delivered := c.Broadcast.Delivered
	if delivered == 0 {
		return 0, false
	}
	return float64(c.Broadcast.Received[plumtree.MsgGossip])/float64(delivered) - 1, true
}

// Stats gathers the node's counters. It walks every stored group of every
// scope under the node's lock: 9 to 20 ms at 100,000 groups holding
// 1,000,000 members (BenchmarkStats100kGroups), during which changes wait
// and lookups do not. It is for a scrape every few seconds, not a loop.
func (n *Node) Stats() Stats {
	var st Stats
	n.mu.Lock()
	st.Local, st.Remote = n.changes.local, n.changes.remote
	for _, scope := range n.state.Scopes() { // sorted
		s := ScopeStats{Name: scope}
		n.state.Groups(scope, func(g *crdt.Group) {
			s.Groups++
			s.Members += g.Len()
		})
		st.Scopes = append(st.Scopes, s)
	}
	c := n.cluster
	var rep replication.Stats
	if c != nil {
		rep = c.rep.Stats()
	}
	n.mu.Unlock()
	if c == nil {
		return st
	}
	// The broadcast's goroutine takes n.mu in its handlers: ask it for its
	// counters without holding the lock.
	bs, _ := c.bcast.Stats()
	cs := &ClusterStats{Broadcast: bs, Replication: rep, Passive: len(c.overlay.Passive()), Nodes: make(map[membership.NodeStatus]int)}
	for _, p := range c.overlay.Active() {
		rtt, _ := c.overlay.RTT(p.Name)
		cs.Active = append(cs.Active, PeerRTT{Name: p.Name, RTT: rtt})
	}
	for _, m := range c.overlay.Members() {
		cs.Nodes[m.Status]++
	}
	st.Cluster = cs
	return st
}
