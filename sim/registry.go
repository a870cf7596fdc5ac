package sim

import (
	"fmt"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/internal/wire"
)

// RegistryTopic is the Plumtree topic of the registry's operations.
const RegistryTopic = "registry"

// registryReplica is one node's replica and its Plumtree handler: the
// replica is the dedupe oracle (an op is stale when the replica holds its
// owner at that version), and anti-entropy is the digest/delta exchange.
type registryReplica struct {
	st *crdt.State
	// buffered holds the ids of ops the replica buffered ahead of a gap.
	// Such an op is new the first time only: reporting it new again would
	// have Plumtree forward it again, around every cycle of the overlay,
	// for as long as the gap lasts.
	buffered map[string]struct{}
}

// maxBuffered bounds the ids remembered in buffered; past it they are
// forgotten at once (a few repeated forwards, no unbounded growth).
const maxBuffered = 4096

// EnableRegistry gives every node started from now on a registry replica.
// Call it before AddNodes.
func (s *Simulator) EnableRegistry() { s.registry = true }

// startReplica gives node n a fresh replica, the handler of RegistryTopic.
func startReplica(n *node) {
	n.reg = &registryReplica{st: crdt.New(crdt.Config{Self: n.name, Incarnation: uint64(n.gen)}), buffered: map[string]struct{}{}}
	if err := n.pt.Register(RegistryTopic, n.reg); err != nil {
		panic(err)
	}
}

// Join makes node i's owner join member to group in scope "sim" and
// broadcasts the op.
func (s *Simulator) Join(i int, group, member string) error {
	n := s.nodes[i]
	if !n.alive || n.reg == nil {
		return fmt.Errorf("sim: join on node %d: not running with a registry", i)
	}
	op := n.reg.st.LocalJoin("sim", group, member, 1, nil, int64(s.now))
	if err := n.pt.Broadcast(RegistryTopic, opID(&op), crdt.AppendOp(nil, &op)); err != nil {
		return err
	}
	s.flushPlumtree(n)
	return nil
}

// Digest returns node i's registry digest.
func (s *Simulator) Digest(i int) crdt.Digest { return s.nodes[i].reg.st.Digest() }

// RegistryConverged reports whether every live replica has the same digest.
func (s *Simulator) RegistryConverged() bool {
	var first *crdt.Digest
	for _, n := range s.nodes {
		if !n.alive || n.reg == nil {
			continue
		}
		d := n.reg.st.Digest()
		if first == nil {
			first = &d
			continue
		}
		if !first.Equal(&d) {
			return false
		}
	}
	return true
}

func opID(op *crdt.Op) []byte {
	b := wire.AppendString(nil, op.Owner)
	b = wire.AppendUvarint(b, op.Incarnation)
	return wire.AppendUvarint(b, op.Seq)
}

func decodeOpID(id []byte) (owner string, v crdt.Version, err error) {
	d := wire.NewDecoder(id)
	owner = d.String(crdt.MaxNameLen)
	v = crdt.Version{Incarnation: d.Uvarint(), Seq: d.Uvarint()}
	return owner, v, d.Finish()
}

func (r *registryReplica) Merge(_ string, id, payload []byte) (plumtree.Verdict, []plumtree.Action) {
	op, err := crdt.DecodeOp(payload)
	if err != nil {
		return plumtree.Duplicate, nil
	}
	switch r.st.Apply(&op) {
	case crdt.Applied:
		return plumtree.New, nil
	case crdt.Buffered:
		if _, again := r.buffered[string(id)]; again {
			return plumtree.Duplicate, nil
		}
		if len(r.buffered) >= maxBuffered {
			clear(r.buffered)
		}
		r.buffered[string(id)] = struct{}{}
		return plumtree.New, nil
	}
	return plumtree.Duplicate, nil
}

func (r *registryReplica) IsStale(id []byte) bool {
	owner, v, err := decodeOpID(id)
	if err != nil {
		return true
	}
	if dead, ok := r.st.Tombstoned(owner); ok && v.Incarnation <= dead {
		return true
	}
	have, ok := r.st.Owner(owner)
	return ok && !have.Less(v)
}

// Graft finds no op: the replica keeps state, not ops, so the Plumtree's
// cache of recent payloads answers.
func (r *registryReplica) Graft([]byte) ([]byte, bool) { return nil, false }

// Exchange messages: a digest; a delta and a digest; a delta.
const (
	exchangeDigest      byte = 1
	exchangeDeltaDigest byte = 2
	exchangeDelta       byte = 3
)

func (r *registryReplica) ExchangeStart(string) []byte {
	dg := r.st.Digest()
	return crdt.AppendDigest([]byte{exchangeDigest}, &dg)
}

func (r *registryReplica) ExchangeReceive(_ plumtree.Exchange, data []byte) ([]byte, []plumtree.Action) {
	if len(data) == 0 {
		return nil, nil
	}
	switch data[0] {
	case exchangeDigest:
		theirs, err := crdt.DecodeDigest(data[1:])
		if err != nil {
			return nil, nil
		}
		mine := r.st.Digest()
		if mine.Equal(&theirs) {
			return nil, nil
		}
		delta := r.st.Delta(&theirs)
		b := wire.AppendBytes([]byte{exchangeDeltaDigest}, crdt.AppendDelta(nil, &delta))
		return crdt.AppendDigest(b, &mine), nil
	case exchangeDeltaDigest:
		d := wire.NewDecoder(data[1:])
		deltaBytes := d.Bytes(len(data))
		if d.Err() != nil {
			return nil, nil
		}
		delta, err := crdt.DecodeDelta(deltaBytes)
		if err != nil {
			return nil, nil
		}
		theirs, err := crdt.DecodeDigest(data[len(data)-d.Len():])
		if err != nil {
			return nil, nil
		}
		r.st.Merge(&delta)
		back := r.st.Delta(&theirs)
		if back.Empty() {
			return nil, nil
		}
		return crdt.AppendDelta([]byte{exchangeDelta}, &back), nil
	case exchangeDelta:
		delta, err := crdt.DecodeDelta(data[1:])
		if err == nil {
			r.st.Merge(&delta)
		}
	}
	return nil, nil
}
