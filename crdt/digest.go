package crdt

import (
	"sort"
)

// OwnerVersion is one line of a digest: an owner, the version a replica
// holds of it and the chain hash of the owner's ops up to that version; for
// a tombstone, the dead incarnation (Seq and Chain 0).
type OwnerVersion struct {
	Owner string
	Version
	Chain uint64
}

// Digest summarises a replica in one line per owner: what two replicas
// swap to find out which owners either is missing. Both lists are sorted by
// owner, so equal replicas have equal digests. An owner record with no op
// applied (seq 0, no entries) is not a line: it means the same as an
// unknown owner.
type Digest struct {
	Owners     []OwnerVersion
	Tombstones []OwnerVersion
}

// Equal reports whether two digests are the same.
func (d *Digest) Equal(e *Digest) bool {
	return equalVersions(d.Owners, e.Owners) && equalVersions(d.Tombstones, e.Tombstones)
}

func equalVersions(a, b []OwnerVersion) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// GroupEntries is one owner's entries in one group, sorted by member.
type GroupEntries struct {
	Scope   string
	Group   string
	Entries []Entry
}

// OwnerState is everything one owner holds at one version: the unit of
// full-state merge, and what a refute announces.
type OwnerState struct {
	Owner   string
	Version Version
	// Chain is the owner's chain hash at Version: two states of one
	// version with different chains come from two processes that reused
	// an incarnation.
	Chain  uint64
	Groups []GroupEntries // sorted by (Scope, Group)
}

// Delta is what a peer is missing: whole owner states where this replica is
// ahead, and tombstones the peer has not seen.
type Delta struct {
	Owners     []OwnerState
	Tombstones []OwnerVersion
}

// Empty reports whether the delta carries nothing.
func (d *Delta) Empty() bool { return len(d.Owners) == 0 && len(d.Tombstones) == 0 }

// Digest returns this replica's digest. It costs O(owners); Summary and
// BucketHashes are the cheap first steps of an exchange.
func (s *State) Digest() Digest { return s.DigestOf(allBuckets) }

// DigestOf returns the digest lines (owners and tombstones) of the given
// buckets only (bucket numbers in any order; repeats and numbers out of
// range are ignored).
func (s *State) DigestOf(buckets []int) Digest {
	var d Digest
	for _, name := range s.digest.namesIn(buckets) {
		if o, ok := s.owners[name]; ok && o.version.Seq > 0 {
			d.Owners = append(d.Owners, OwnerVersion{Owner: name, Version: o.version, Chain: o.chain})
		}
		if t, ok := s.tombstones[name]; ok {
			d.Tombstones = append(d.Tombstones, OwnerVersion{Owner: name, Version: Version{Incarnation: t.inc}})
		}
	}
	return d
}

func sortVersions(vs []OwnerVersion) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].Owner < vs[j].Owner })
}

// ahead reports whether a holding (v, chain) of an owner is ahead of a peer
// holding (w, wchain): a higher version, or the same version with a higher
// chain. Ordering conflicting chains makes every replica keep the same one
// of two processes that reused an incarnation, until the owner refutes.
func ahead(v Version, chain uint64, w Version, wchain uint64) bool {
	if v != w {
		return w.Less(v)
	}
	return wchain < chain
}

// Delta returns what a peer with digest peer is missing from this replica.
// An owner the peer lists at an older version is sent even when this
// replica's record of it is empty (a restart replaces stale entries);
// an owner the peer does not list is sent only if it holds something.
//
// The peer's lines also tell this replica about itself: a newer version
// of this node, or its version with another chain, is noted for
// NeedsRefute; a conflicting chain of any owner is counted (Conflicts).
func (s *State) Delta(peer *Digest) Delta { return s.DeltaOf(peer, allBuckets) }

// DeltaOf is Delta restricted to the given buckets (as DigestOf takes
// them): what a peer whose digest of those buckets is peer lacks. The
// peer's lines outside those buckets are ignored.
func (s *State) DeltaOf(peer *Digest, buckets []int) Delta {
	in := make(map[int]bool, len(buckets))
	for _, b := range buckets {
		in[b] = true
	}
	theirs := make(map[string]OwnerVersion, len(peer.Owners))
	for _, ov := range peer.Owners {
		if in[Bucket(ov.Owner)] {
			theirs[ov.Owner] = ov
		}
	}
	theirDead := make(map[string]uint64, len(peer.Tombstones))
	for _, ov := range peer.Tombstones {
		if in[Bucket(ov.Owner)] {
			theirDead[ov.Owner] = ov.Incarnation
		}
	}
	if ov, ok := theirs[s.self.name]; ok {
		s.learnOfSelf(ov)
	}
	var d Delta
	for _, name := range s.digest.namesIn(buckets) {
		if o, ok := s.owners[name]; ok {
			ov, listed := theirs[name]
			if listed && ov.Version == o.version && ov.Chain != o.chain {
				s.noteConflict(o, o.version)
			}
			dead, tombstoned := theirDead[name]
			switch {
			case tombstoned && o.version.Incarnation <= dead:
			case listed && !ahead(o.version, o.chain, ov.Version, ov.Chain):
			case !listed && o.version.Seq == 0:
			default:
				d.Owners = append(d.Owners, s.ownerState(o))
			}
		}
		if t, ok := s.tombstones[name]; ok {
			if dead, ok := theirDead[name]; !ok || dead < t.inc {
				d.Tombstones = append(d.Tombstones, OwnerVersion{Owner: name, Version: Version{Incarnation: t.inc}})
			}
		}
	}
	return d
}

// learnOfSelf notes what a peer's line about this node reveals: a version
// this process did not reach, or its own version with another chain.
func (s *State) learnOfSelf(ov OwnerVersion) {
	switch {
	case s.self.version.Less(ov.Version):
		s.noteClaim(ov.Version)
	case s.self.version == ov.Version && ov.Chain != s.self.chain:
		s.noteConflict(s.self, ov.Version)
	}
}

// Snapshot is the whole replica as a delta: what a peer that knows nothing
// is missing. Two replicas hold the same data exactly when their snapshots
// are deeply equal.
func (s *State) Snapshot() Delta { return s.Delta(&Digest{}) }

// OwnerState returns one owner's whole state, with its version and chain.
func (s *State) OwnerState(name string) (OwnerState, bool) {
	o, ok := s.owners[name]
	if !ok {
		return OwnerState{}, false
	}
	return s.ownerState(o), true
}

func (s *State) ownerState(o *owner) OwnerState {
	st := OwnerState{Owner: o.name, Version: o.version, Chain: o.chain}
	for _, g := range o.groups.sorted() {
		st.Groups = append(st.Groups, GroupEntries{Scope: g.Scope, Group: g.Name, Entries: g.entriesOf(o.name)})
	}
	return st
}

// Merge folds a peer's delta into this replica: tombstones first (through
// MergeTombstone, stamped with the latest time given to Tombstone or
// MergeAt), then each owner through MergeOwner. MergeAt is the same with
// the caller's time: prefer it where tombstones are collected, so a
// tombstone learned from a peer gets its full grace period.
//
// Merge is commutative, associative and idempotent over replicas' states
// (per owner, the higher (incarnation, seq, chain) wins; per dead owner,
// the higher tombstone). Ops buffered ahead of a gap are outside that
// lattice: a merge that fills the gap drains them, so with buffers a⊔b and
// b⊔a can differ by what one side had buffered, until every gap is filled.
func (s *State) Merge(d *Delta) { s.MergeAt(d, s.lastNow) }

// MergeAt is Merge with tombstones stamped now (the caller's time unit, as
// for Tombstone).
func (s *State) MergeAt(d *Delta, now int64) {
	s.lastNow = max(s.lastNow, now)
	for _, t := range d.Tombstones {
		s.MergeTombstone(t.Owner, t.Incarnation, now)
	}
	for i := range d.Owners {
		s.MergeOwner(&d.Owners[i])
	}
}

// MergeOwner folds one owner's state in (as Merge does for each owner of a
// delta) and says what it did: Applied if it moved the owner forward,
// Duplicate if this replica already held that version or newer, Refused if
// the owner is tombstoned at that incarnation, rejected by Config.Alive, or
// is this node (a claim about this node is noted for NeedsRefute).
//
// The owner's entries become the state's at once, and the observer hears
// only the differences: a refute that carries the owner's entries over to
// a new incarnation reports nothing for entries that did not change.
func (s *State) MergeOwner(st *OwnerState) Result {
	if st.Owner == s.self.name {
		s.learnOfSelf(OwnerVersion{Owner: st.Owner, Version: st.Version, Chain: st.Chain})
		return Refused
	}
	if !s.alive(st.Owner) {
		return Refused
	}
	if t, ok := s.tombstones[st.Owner]; ok && st.Version.Incarnation <= t.inc {
		return Refused
	}
	o := s.owners[st.Owner]
	if o == nil {
		o = s.newOwner(st.Owner, Version{})
	} else {
		if o.version == st.Version && o.chain != st.Chain {
			s.noteConflict(o, st.Version)
		}
		if !ahead(st.Version, st.Chain, o.version, o.chain) {
			return Duplicate
		}
	}
	s.replaceEntries(o, st)
	s.setVersion(o, st.Version, st.Chain)
	s.drainPending(o)
	return Applied
}

// replaceEntries makes o's entries equal to st's, reporting the difference.
func (s *State) replaceEntries(o *owner, st *OwnerState) {
	incoming := make(map[groupKey]bool, len(st.Groups))
	for i := range st.Groups {
		ge := &st.Groups[i]
		incoming[groupKey{ge.Scope, ge.Group}] = true
		s.replaceGroupEntries(o, ge.Scope, ge.Group, ge.Entries)
	}
	for _, g := range o.groups.sorted() {
		if !incoming[groupKey{g.Scope, g.Name}] {
			s.replaceGroupEntries(o, g.Scope, g.Name, nil)
		}
	}
}

type groupKey struct{ scope, name string }

func (s *State) replaceGroupEntries(o *owner, scope, name string, want []Entry) {
	if s.growGroupEntries(o, scope, name, want) {
		return
	}
	wanted := make(map[string]*Entry, len(want))
	for i := range want {
		wanted[want[i].Member] = &want[i]
	}
	if g := s.scopes[scope][name]; g != nil {
		for _, cur := range g.entriesOf(o.name) {
			w, ok := wanted[cur.Member]
			if !ok || w.Joined != cur.Joined {
				// Gone, or left and joined again since: the old entry ends.
				s.leave(o, scope, name, cur.Member, cur.Count)
				continue
			}
			delete(wanted, cur.Member)
			s.matchEntry(o, scope, name, cur.Member, cur.Count, cur.Meta, w)
		}
	}
	for i := range want {
		if _, ok := wanted[want[i].Member]; ok {
			s.join(o, scope, name, want[i])
		}
	}
}

// growGroupEntries is replaceGroupEntries when o keeps every entry it
// holds in the group (the usual case: a state passed on after an exchange
// or a graft adds a few joins to what a replica had). It finds each wanted
// entry through the group's index instead of listing o's entries from the
// whole group, and reports the same changes in the same order. It does
// nothing and returns false when some entry of o goes or was replaced.
func (s *State) growGroupEntries(o *owner, scope, name string, want []Entry) bool {
	g := s.scopes[scope][name]
	held := 0
	if g != nil {
		held = o.groups.count(g)
	}
	// at[i] is where want[i] is held, -1 if it is new. Count and
	// metadata changes replace elements in place, so these positions hold
	// until the joins at the end.
	at := make([]int, len(want))
	kept := 0
	for i := range want {
		at[i] = -1
		if g == nil {
			continue
		}
		if j := g.find(o.name, want[i].Member); j >= 0 {
			if g.members[j].Joined != want[i].Joined {
				return false // left and joined again: the old entry ends first
			}
			at[i] = j
			kept++
		}
	}
	if kept != held {
		return false
	}
	for i := range want {
		if at[i] < 0 {
			continue
		}
		cur := g.members[at[i]]
		s.matchEntry(o, scope, name, cur.ID, cur.Count, cur.Meta, &want[i])
	}
	for i := range want {
		if at[i] < 0 {
			s.join(o, scope, name, want[i])
		}
	}
	return true
}

// matchEntry brings one entry o holds, of the same join as w, to w's count
// and metadata, reporting each difference as a change.
func (s *State) matchEntry(o *owner, scope, name, member string, count uint32, meta Meta, w *Entry) {
	switch {
	case w.Count < count:
		s.leave(o, scope, name, member, count-w.Count)
	case w.Count > count:
		s.join(o, scope, name, Entry{Member: member, Count: w.Count - count})
	}
	if !sameMeta(meta, w.Meta) {
		s.setMeta(o, scope, name, member, w.Meta)
	}
}

func sameMeta(a, b Meta) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
