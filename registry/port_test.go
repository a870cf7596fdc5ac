package registry

import "github.com/cpggo/cpg/crdt"

// The replication port, as the package's tests drive it: they carry ops
// and states between nodes by hand instead of running a cluster.

func (n *Node) applyOp(op *crdt.Op) crdt.Result {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.state.Apply(op)
	n.refuteLocked()
	return r
}

func (n *Node) delta(peer *crdt.Digest) crdt.Delta {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.state.Delta(peer)
	n.refuteLocked()
	return d
}

func (n *Node) merge(d *crdt.Delta) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state.MergeAt(d, n.cfg.Now().UnixNano())
	n.refuteLocked()
}

func (n *Node) tombstone(owner string, incarnation uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state.Tombstone(owner, incarnation, n.cfg.Now().UnixNano())
	n.refuteLocked()
}
