package crdt

import (
	"sort"
)

// OwnerVersion is one line of a digest: an owner and the version a replica
// holds of it (for a tombstone: the dead incarnation, Seq 0).
type OwnerVersion struct {
	Owner string
	Version
}

// Digest summarises a replica in one line per owner: what two replicas
// swap to find out which owners either is missing. Both lists are sorted by
// owner, so equal replicas have equal digests.
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
// full-state merge.
type OwnerState struct {
	Owner   string
	Version Version
	Groups  []GroupEntries // sorted by (Scope, Group)
}

// Delta is what a peer is missing: whole owner states where this replica is
// ahead, and tombstones the peer has not seen.
type Delta struct {
	Owners     []OwnerState
	Tombstones []OwnerVersion
}

// Empty reports whether the delta carries nothing.
func (d *Delta) Empty() bool { return len(d.Owners) == 0 && len(d.Tombstones) == 0 }

// Digest returns this replica's digest.
func (s *State) Digest() Digest {
	d := Digest{Owners: make([]OwnerVersion, 0, len(s.owners))}
	for name, o := range s.owners {
		d.Owners = append(d.Owners, OwnerVersion{name, o.version})
	}
	for name, inc := range s.tombstones {
		d.Tombstones = append(d.Tombstones, OwnerVersion{name, Version{Incarnation: inc}})
	}
	sortVersions(d.Owners)
	sortVersions(d.Tombstones)
	return d
}

func sortVersions(vs []OwnerVersion) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].Owner < vs[j].Owner })
}

// Delta returns what a peer with digest peer is missing from this replica.
func (s *State) Delta(peer *Digest) Delta {
	theirs := make(map[string]Version, len(peer.Owners))
	for _, ov := range peer.Owners {
		theirs[ov.Owner] = ov.Version
	}
	theirDead := make(map[string]uint64, len(peer.Tombstones))
	for _, ov := range peer.Tombstones {
		theirDead[ov.Owner] = ov.Incarnation
	}
	var d Delta
	for _, name := range s.Owners() {
		o := s.owners[name]
		if dead, ok := theirDead[name]; ok && o.version.Incarnation <= dead {
			continue
		}
		if v, ok := theirs[name]; ok && !v.Less(o.version) {
			continue
		}
		d.Owners = append(d.Owners, s.ownerState(o))
	}
	for name, inc := range s.tombstones {
		if dead, ok := theirDead[name]; !ok || dead < inc {
			d.Tombstones = append(d.Tombstones, OwnerVersion{name, Version{Incarnation: inc}})
		}
	}
	sortVersions(d.Tombstones)
	return d
}

// Snapshot is the whole replica as a delta: what a peer that knows nothing
// is missing. Two replicas hold the same state exactly when their snapshots
// are deeply equal.
func (s *State) Snapshot() Delta { return s.Delta(&Digest{}) }

func (s *State) ownerState(o *owner) OwnerState {
	st := OwnerState{Owner: o.name, Version: o.version}
	for _, g := range sortedGroups(o.groups) {
		st.Groups = append(st.Groups, GroupEntries{Scope: g.Scope, Group: g.Name, Entries: g.entriesOf(o.name)})
	}
	return st
}

// Merge folds a peer's delta into this replica: tombstones first, then, per
// owner, the peer's state replaces ours where its version is higher. Changes
// are reported as the differences between the old and the new entries, so a
// subscriber sees no churn for entries that did not change.
func (s *State) Merge(d *Delta) {
	for _, t := range d.Tombstones {
		s.Tombstone(t.Owner, t.Incarnation)
	}
	for i := range d.Owners {
		s.mergeOwner(&d.Owners[i])
	}
}

func (s *State) mergeOwner(st *OwnerState) {
	if st.Owner == s.self.name {
		if s.self.version.Less(st.Version) {
			s.noteClaim(st.Version)
		}
		return
	}
	if dead, ok := s.tombstones[st.Owner]; ok && st.Version.Incarnation <= dead {
		return
	}
	o := s.owners[st.Owner]
	if o == nil {
		o = s.newOwner(st.Owner, Version{})
	} else if !o.version.Less(st.Version) {
		return
	}
	s.replaceEntries(o, st)
	o.version = st.Version
	s.drainPending(o)
}

// replaceEntries makes o's entries equal to st's, reporting the difference.
func (s *State) replaceEntries(o *owner, st *OwnerState) {
	incoming := make(map[groupKey]bool, len(st.Groups))
	for i := range st.Groups {
		ge := &st.Groups[i]
		incoming[groupKey{ge.Scope, ge.Group}] = true
		s.replaceGroupEntries(o, ge.Scope, ge.Group, ge.Entries)
	}
	for _, g := range sortedGroups(o.groups) {
		if !incoming[groupKey{g.Scope, g.Name}] {
			s.replaceGroupEntries(o, g.Scope, g.Name, nil)
		}
	}
}

type groupKey struct{ scope, name string }

func (s *State) replaceGroupEntries(o *owner, scope, name string, want []Entry) {
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
			switch {
			case w.Count < cur.Count:
				s.leave(o, scope, name, cur.Member, cur.Count-w.Count)
			case w.Count > cur.Count:
				s.join(o, scope, name, Entry{Member: cur.Member, Count: w.Count - cur.Count})
			}
			if !sameMeta(cur.Meta, w.Meta) {
				s.setMeta(o, scope, name, cur.Member, w.Meta)
			}
		}
	}
	for i := range want {
		if _, ok := wanted[want[i].Member]; ok {
			s.join(o, scope, name, want[i])
		}
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
