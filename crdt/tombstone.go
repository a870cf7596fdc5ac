package crdt

// Tombstone records that owner is dead up to incarnation inc, at time now
// (in the caller's unit; CollectTombstones compares against it): its
// entries go, and its ops from that or an older incarnation are refused
// from now on.
//
// inc must be the incarnation of the process that died, as the membership
// layer advertised it, not merely the newest one this replica has seen: a
// replica that has not yet heard of the dead process's incarnation would
// otherwise let its ops, arriving later, bring its members back.
//
// A tombstone for this node is recorded but not obeyed: the node refutes
// it (NeedsRefute) by moving to a newer incarnation. Recording the same
// tombstone again moves its time forward, so the grace period before
// collection counts from this replica's latest verdict. It reports whether
// the tombstone is new or covers more incarnations than before.
func (s *State) Tombstone(name string, inc uint64, now int64) bool {
	s.lastNow = max(s.lastNow, now)
	if t, ok := s.tombstones[name]; ok && t.inc >= inc {
		t.at = max(t.at, now)
		return false
	}
	s.setTombstone(name, inc, now)
	if name == s.self.name {
		// Recorded all the same: once Refute has moved past it, it is true
		// (that incarnation is gone), and keeping it makes this replica's
		// digest equal to its peers'.
		if inc >= s.self.version.Incarnation {
			s.noteClaim(Version{Incarnation: inc, Seq: ^uint64(0)})
		}
		return true
	}
	if o, ok := s.owners[name]; ok && o.version.Incarnation <= inc {
		s.clearOwner(o)
		s.deleteOwner(o)
	}
	return true
}

// MergeTombstone records a tombstone a peer sent (in a delta), at time
// now. Unlike Tombstone, it refuses (false) an owner that Config.Alive
// rejects, unless it raises a tombstone this replica holds: such an
// owner's entries are refused anyway, and taking the
// tombstone back after this replica collected it would keep it travelling
// between replicas whose collections are a little apart.
func (s *State) MergeTombstone(name string, inc uint64, now int64) bool {
	if _, held := s.tombstones[name]; !held && name != s.self.name && !s.alive(name) {
		// Refused only when it would add one: raising a tombstone this
		// replica holds brings nothing back, and refusing it would leave
		// this replica's digest apart from its peers' for good.
		return false
	}
	return s.Tombstone(name, inc, now)
}

func (s *State) setTombstone(name string, inc uint64, now int64) {
	if t, ok := s.tombstones[name]; ok {
		s.digest.remove(Bucket(name), tombstoneLineHash(name, t.inc))
		t.inc, t.at = inc, max(t.at, now)
	} else {
		s.tombstones[name] = &tombstone{inc: inc, at: now}
		s.digest.addName(name)
	}
	s.digest.add(Bucket(name), tombstoneLineHash(name, inc))
}

// CollectTombstones removes the tombstones recorded before the given time
// and says how many went. Collection cannot resurrect as long as the
// membership layer no longer lists a collected owner as alive
// (Config.Alive): the replica refuses its late ops and merged states all
// the same. The grace period (how far before now the caller puts before)
// should outlast the membership layer's own memory of dead nodes' verdicts
// spreading, and any message in flight.
func (s *State) CollectTombstones(before int64) int {
	n := 0
	for name, t := range s.tombstones {
		if t.at >= before {
			continue
		}
		s.digest.remove(Bucket(name), tombstoneLineHash(name, t.inc))
		delete(s.tombstones, name)
		if _, known := s.owners[name]; !known {
			s.digest.removeName(name)
		}
		n++
	}
	return n
}

func (s *State) noteClaim(v Version) {
	if s.claim.Less(v) {
		s.claim = v
	}
}

// NeedsRefute reports whether some replica holds a tombstone for this node,
// ops under its name that it did not make, or its current version with
// another chain (a second process under the same name and incarnation):
// Refute answers all three. Callers ask after every Apply, Merge,
// MergeOwner, Delta and Tombstone, since each can reveal a claim.
func (s *State) NeedsRefute() bool { return s.self.version.Less(s.claim) || s.selfConflict }

// noteConflict counts a second chain seen for o at version v, once per
// (owner, version).
func (s *State) noteConflict(o *owner, v Version) {
	if o.conflictAt == v {
		return
	}
	o.conflictAt = v
	s.conflicts++
	if o == s.self {
		s.selfConflict = true
	}
}
