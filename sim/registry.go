package sim

import (
	"fmt"

	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/registry/replication"
)

// EnableRegistry gives every node started from now on a registry replica:
// the registry's own replication core (registry/replication) over a fresh
// crdt.State, registered as the Plumtree handler of replication.Topic, as
// the registry node does.
//
// The replicas share one string interner: each holds the same names (owner
// names, groups, member IDs), decoded afresh from every message, and
// without it those copies are a large share of a replica's memory.
func (s *Simulator) EnableRegistry() {
	s.registry = true
	if s.names == nil {
		s.names = crdt.NewInterner()
	}
}

// startReplica gives node n a fresh replica. The process's incarnation is
// its start count, which grows at every restart as the wall clock does for
// a real node.
func (s *Simulator) startReplica(n *node) {
	st := crdt.New(crdt.Config{Self: n.name, Incarnation: uint64(n.gen), Intern: s.names.Intern})
	n.reg = replication.New(st, replication.Config{Tick: s.cfg.BroadcastTick})
	if err := n.pt.Register(replication.Topic, n.reg); err != nil {
		panic(err)
	}
}

// Join makes node i's owner join member to group in scope "sim" and
// broadcasts the op, as the registry node does for a local join.
func (s *Simulator) Join(i int, group, member string) error {
	n := s.nodes[i]
	if !n.alive || n.reg == nil {
		return fmt.Errorf("sim: join on node %d: not running with a registry", i)
	}
	op := n.reg.State().LocalJoin("sim", group, member, 1, nil, int64(s.now))
	id, payload := replication.Publish(&op)
	if err := n.pt.Broadcast(replication.Topic, id, payload); err != nil {
		return err
	}
	s.flushPlumtree(n)
	return nil
}

// Digest returns node i's registry digest.
func (s *Simulator) Digest(i int) crdt.Digest { return s.nodes[i].reg.State().Digest() }

// Replica returns node i's replication core, for inspection.
func (s *Simulator) Replica(i int) *replication.Replica { return s.nodes[i].reg }

// RegistryConverged reports whether every live replica holds the same
// data. It compares the digests' fingerprints, which cover every owner's
// version and the chain hash of its operations (so equal fingerprints mean
// equal entries, not only equal version numbers), and cost nothing to read.
func (s *Simulator) RegistryConverged() bool {
	var first crdt.Summary
	seen := false
	for _, n := range s.nodes {
		if !n.alive || n.reg == nil {
			continue
		}
		sum := n.reg.State().Summary()
		if !seen {
			first, seen = sum, true
			continue
		}
		if sum != first {
			return false
		}
	}
	return true
}

// RegistryStats sums the replication counters of the live replicas.
func (s *Simulator) RegistryStats() replication.Stats {
	var total replication.Stats
	for _, n := range s.nodes {
		if !n.alive || n.reg == nil {
			continue
		}
		st := n.reg.Stats()
		total.Applied += st.Applied
		total.Buffered += st.Buffered
		total.Duplicates += st.Duplicates
		total.Refused += st.Refused
		total.Malformed += st.Malformed
		total.Pulls += st.Pulls
		total.Passed += st.Passed
		total.Refutes += st.Refutes
		total.ExchangeBytes += st.ExchangeBytes
	}
	return total
}
