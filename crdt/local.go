package crdt

import "fmt"

// The Local* methods are the owner's side: they change this node's own
// entries, numbering each change with the next sequence number, and return
// the op to send to every other replica. A refused change (leaving a group
// one is not in) consumes no number, so replicas never see a gap for it.

// LocalJoin adds count to this node's entry for member in scope/group,
// creating it with meta and now as its join time. A non-nil meta replaces
// an existing entry's metadata.
func (s *State) LocalJoin(scope, group, member string, count uint32, meta Meta, now int64) Op {
	op := s.nextOp(Join, scope, group, member)
	op.Count, op.Meta, op.Time = count, meta, now
	s.applyLocal(&op)
	return op
}

// LocalLeave subtracts count from this node's entry (a member joined twice
// must leave twice), removing it at zero. count is capped at the entry's.
func (s *State) LocalLeave(scope, group, member string, count uint32) (Op, error) {
	e, ok := s.localEntry(scope, group, member)
	if !ok {
		return Op{}, fmt.Errorf("%w: %q of group %q in scope %q", ErrNotMember, member, group, scope)
	}
	op := s.nextOp(Leave, scope, group, member)
	op.Count = min(count, e.Count)
	s.applyLocal(&op)
	return op, nil
}

// LocalSetMeta replaces the metadata of this node's entry.
func (s *State) LocalSetMeta(scope, group, member string, meta Meta) (Op, error) {
	if _, ok := s.localEntry(scope, group, member); !ok {
		return Op{}, fmt.Errorf("%w: %q of group %q in scope %q", ErrNotMember, member, group, scope)
	}
	op := s.nextOp(SetMeta, scope, group, member)
	op.Meta = meta
	s.applyLocal(&op)
	return op, nil
}

// LocalEntry returns this node's entry for member, if it has one.
func (s *State) LocalEntry(scope, group, member string) (Entry, bool) {
	return s.localEntry(scope, group, member)
}

func (s *State) localEntry(scope, group, member string) (Entry, bool) {
	g := s.scopes[scope][group]
	if g == nil {
		return Entry{}, false
	}
	return g.Lookup(s.self.name, member)
}

func (s *State) nextOp(kind OpKind, scope, group, member string) Op {
	return Op{
		Owner:       s.self.name,
		Incarnation: s.self.version.Incarnation,
		Seq:         s.self.version.Seq + 1,
		Kind:        kind,
		Scope:       scope,
		Group:       group,
		Member:      member,
	}
}

func (s *State) applyLocal(op *Op) {
	s.applyEntry(s.self, op)
	s.setVersion(s.self, op.Version(), chainOp(s.self.chain, op))
}

// Refute answers a tombstone for this node, ops under its name that it did
// not make, or a second process under its name and incarnation: it moves
// to a new incarnation, above every claim and (with Config.Clock) at least
// the clock, and returns its whole state there as one OwnerState, to
// broadcast and to hand to peers (MergeOwner). Replicas that merge it
// replace whatever they held of this node at once, so their subscribers
// see only real differences; nothing changes locally but the version.
//
// The new incarnation starts at seq 1 when the node holds entries (the
// refute is that incarnation's first step, so an op made after it waits
// on a replica until the refute arrives), and at seq 0 when it holds none
// (an empty new incarnation, like a fresh start).
func (s *State) Refute() OwnerState {
	inc := max(s.self.version.Incarnation, s.claim.Incarnation)
	if t, ok := s.tombstones[s.self.name]; ok {
		inc = max(inc, t.inc)
	}
	inc++
	if s.cfg.Clock != nil {
		inc = max(inc, s.cfg.Clock())
	}
	s.claim, s.selfConflict = Version{}, false
	st := s.ownerState(s.self)
	st.Version, st.Chain = Version{Incarnation: inc}, 0
	if len(st.Groups) > 0 {
		st.Version.Seq = 1
		st.Chain = chainNext(0, appendGroups(nil, st.Groups))
	}
	s.setVersion(s.self, st.Version, st.Chain)
	return st
}
