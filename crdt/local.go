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
	s.self.version.Seq = op.Seq
}

// Refute answers a tombstone for this node, or ops under its name that it
// did not make: it moves to an incarnation above every claim and returns
// ops that announce its current entries again, from seq 1. Replicas that
// apply them drop whatever they held for the older incarnations, so they
// end with exactly this node's entries. Nothing changes locally but the
// version, so local subscribers see no churn.
func (s *State) Refute() []Op {
	inc := max(s.self.version.Incarnation, s.claim.Incarnation) + 1
	s.self.version = Version{Incarnation: inc}
	s.claim = Version{}
	var ops []Op
	for _, g := range sortedGroups(s.self.groups) {
		for _, e := range g.entriesOf(s.self.name) {
			s.self.version.Seq++
			ops = append(ops, Op{
				Owner: s.self.name, Incarnation: inc, Seq: s.self.version.Seq,
				Kind: Join, Scope: g.Scope, Group: g.Name, Member: e.Member,
				Count: e.Count, Meta: e.Meta, Time: e.Joined,
			})
		}
	}
	return ops
}
