package crdt

import (
	"cmp"
	"slices"
	"sort"
	"sync/atomic"
)

// Entry is one owner's entry for one member of one group: the unit ops
// change and deltas carry.
type Entry struct {
	Member string
	Count  uint32
	Joined int64 // Unix nanoseconds of the join that created the entry, by the owner's clock
	Meta   Meta
}

// Member is an entry as a group stores it, with the owner (Node) that holds
// it. It is also what lookups hand to users, so a group's members need no
// second copy.
type Member struct {
	// ID names the member; it is unique per node (the same ID on two nodes
	// is two members).
	ID string
	// Node is the owner: the node that joined the member.
	Node string
	// Joined is when the member first joined (Unix nanoseconds, by its
	// node's clock): the same on every replica.
	Joined int64
	// Meta is the member's metadata, nil if it has none.
	Meta Meta
	// Count is how many times the member joined and has not left.
	Count uint32
}

func (m *Member) entry() Entry {
	return Entry{Member: m.ID, Count: m.Count, Joined: m.Joined, Meta: m.Meta}
}

// indexThreshold is the size above which a group keeps a member index:
// below it a linear scan is faster than hashing; above it, finding an entry
// is a hash and a binary search instead of a scan.
const indexThreshold = 32

// Group is one named group of one scope, holding every owner's members in
// one slice ordered this replica's members first, then by age (Joined, Node,
// ID): the order lookups return, and the same on every replica up to the
// local/remote split.
//
// The slice is copy-on-write: a change never alters an element that a
// slice returned by Members can see, so readers may keep using a slice
// after the group changes, without a lock. (Appending past the end of the
// old slice, into spare capacity, is allowed: no old slice can see it.)
type Group struct {
	Scope string
	Name  string

	members []Member
	local   int
	// published: Members handed out the current slice, so the next change
	// copies it. Until then nobody but the state sees the slice, and
	// changes are made in place: a replica nobody reads (the simulator's,
	// a node between lookups) neither copies a group per change nor leaves
	// the copies to the garbage collector.
	published atomic.Bool
	// index maps hash(node, id) to the entry's Joined, above
	// indexThreshold: with the sort key known, finding an entry is a
	// binary search. Hashes keep it at 16 bytes an entry instead of two
	// strings; two members of one group with one hash (indexCollided) turn
	// the group back to scans until the index is rebuilt.
	index         map[uint64]int64
	indexCollided bool
}

// Members returns the group's members, this replica's first, each part
// oldest first. The slice is shared: it must not be modified, and it stays
// valid (as a snapshot) after the group changes.
func (g *Group) Members() []Member {
	if !g.published.Load() {
		g.published.Store(true)
	}
	return g.members
}

// writable reports whether the current slice may be changed in place: no
// reader has been handed it.
func (g *Group) writable() bool { return !g.published.Load() }

// unpublish records that the slice was replaced by a fresh copy, which no
// reader has seen yet.
func (g *Group) unpublish() { g.published.Store(false) }

// Local is how many of Members, from the start, are this replica's own.
func (g *Group) Local() int { return g.local }

// Len is the number of distinct (owner, member) entries in the group.
func (g *Group) Len() int { return len(g.members) }

// Each calls fn for every entry of the group with its owner's name. fn must
// not keep e.
func (g *Group) Each(fn func(owner string, e *Entry)) {
	for i := range g.members {
		e := g.members[i].entry()
		fn(g.members[i].Node, &e)
	}
}

// Lookup returns owner's entry for member, if any.
func (g *Group) Lookup(owner, member string) (Entry, bool) {
	if i := g.find(owner, member); i >= 0 {
		return g.members[i].entry(), true
	}
	return Entry{}, false
}

// entriesOf returns owner's entries, sorted by member.
func (g *Group) entriesOf(owner string) []Entry {
	var es []Entry
	for i := range g.members {
		if g.members[i].Node == owner {
			es = append(es, g.members[i].entry())
		}
	}
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.Member, b.Member) })
	return es
}

// order is the slice's sort key: local first, then age.
func order(a *Member, aLocal bool, b *Member, bLocal bool) int {
	if aLocal != bLocal {
		if aLocal {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.Joined, b.Joined); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// search returns where m belongs (or is) in the slice.
func (g *Group) search(m *Member, self string) int {
	local := m.Node == self
	lo, hi := 0, len(g.members)
	if local {
		hi = g.local
	} else {
		lo = g.local
	}
	if hi > lo {
		// Joins mostly come youngest last (a burst, ops in the order they
		// were made): one comparison places them.
		if x := &g.members[hi-1]; order(x, x.Node == self, m, local) < 0 {
			return hi
		}
	}
	return lo + sort.Search(hi-lo, func(i int) bool {
		x := &g.members[lo+i]
		return order(x, x.Node == self, m, local) >= 0
	})
}

func (g *Group) find(owner, member string) int {
	if g.index != nil && !g.indexCollided {
		joined, ok := g.index[memberHash(owner, member)]
		if !ok {
			return -1
		}
		// The index knows the entry's sort key, so a binary search finds
		// it; which part it is in follows from the other entries' owners.
		probe := Member{ID: member, Node: owner, Joined: joined}
		for _, self := range [2]bool{true, false} {
			lo, hi := 0, g.local
			if !self {
				lo, hi = g.local, len(g.members)
			}
			i := lo + sort.Search(hi-lo, func(i int) bool {
				return order(&g.members[lo+i], true, &probe, true) >= 0
			})
			if i < hi && g.members[i].Node == owner && g.members[i].ID == member {
				return i
			}
		}
		return -1
	}
	for i := range g.members {
		if g.members[i].ID == member && g.members[i].Node == owner {
			return i
		}
	}
	return -1
}

// appendRunAt is the size past which a group that grows at its end gets
// half its size as spare rather than an eighth (see Group.insert).
const appendRunAt = 256

// smallGroup is the size below which a group that grows at its end
// doubles (see Group.insert).
const smallGroup = 16

// grown returns a fresh slice of length n with some spare capacity, so a
// run of appends does not copy at every step; the spare is small because
// groups are many and most stay small.
func grown(n int) []Member {
	return make([]Member, n, n+n/8+1)
}

func (g *Group) insert(m Member, self string) {
	i := g.search(&m, self)
	n := len(g.members)
	switch {
	case i == n && n < cap(g.members):
		// Past the end: no published slice can see it.
		g.members = append(g.members, m)
	case n < cap(g.members) && g.writable():
		g.members = g.members[:n+1]
		copy(g.members[i+1:], g.members[i:n])
		g.members[i] = m
	default:
		var next []Member
		switch {
		case i == n && n > appendRunAt:
			// Past the end of a large group: a run of new members (a
			// burst, or replicas catching up) is coming, whose copies
			// at n/8 spare cost eight times the group.
			next = make([]Member, n+1, n+n/2)
		case i == n && n < smallGroup:
			// Past the end of a small one: doubling, where an eighth
			// spare (none, below eight) reallocated at nearly every
			// join.
			next = make([]Member, n+1, 2*(n+1))
		default:
			next = grown(n + 1)
		}
		copy(next, g.members[:i])
		next[i] = m
		copy(next[i+1:], g.members[i:])
		g.members = next
		g.unpublish()
	}
	if m.Node == self {
		g.local++
	}
	switch {
	case g.index != nil:
		g.indexAdd(m.Node, m.ID, m.Joined)
	case len(g.members) > indexThreshold:
		g.rebuildIndex()
	}
}

func (g *Group) indexAdd(node, id string, joined int64) {
	h := memberHash(node, id)
	if _, taken := g.index[h]; taken {
		g.indexCollided = true
	}
	g.index[h] = joined
}

func (g *Group) rebuildIndex() {
	g.index = make(map[uint64]int64, len(g.members))
	g.indexCollided = false
	for i := range g.members {
		g.indexAdd(g.members[i].Node, g.members[i].ID, g.members[i].Joined)
	}
}

// replace publishes a copy of the slice with element i changed to m (same
// position: count and metadata do not change the order).
func (g *Group) replace(i int, m Member) {
	if g.writable() {
		g.members[i] = m
		return
	}
	next := grown(len(g.members))
	copy(next, g.members)
	next[i] = m
	g.members = next
	g.unpublish()
}

// removeWhere publishes the group without the elements drop selects and
// returns them.
func (g *Group) removeWhere(self string, drop func(*Member) bool) []Member {
	n := len(g.members)
	if n > 1 && (drop(&g.members[0]) || drop(&g.members[n-1])) && g.dropsOne(drop) {
		// The oldest or the newest entry goes, and only it (a leave, not a
		// whole owner's purge): reslicing past it publishes the new view
		// without a copy. The capacity is clipped so that no later append
		// writes over an element an older view still shows.
		var gone Member
		if drop(&g.members[0]) {
			gone = g.members[0]
			g.members = g.members[1:]
		} else {
			gone = g.members[n-1]
			if g.writable() {
				g.members[n-1] = Member{}
				g.members = g.members[:n-1]
			} else {
				g.members = g.members[: n-1 : n-1]
			}
		}
		removed := []Member{gone}
		g.forget(self, removed)
		return removed
	}
	var removed []Member
	if g.writable() {
		// Compact in place, and clear the tail so that it holds on to no
		// strings or metadata.
		kept := 0
		for i := range g.members {
			if drop(&g.members[i]) {
				removed = append(removed, g.members[i])
				continue
			}
			g.members[kept] = g.members[i]
			kept++
		}
		clear(g.members[kept:])
		g.members = g.members[:kept]
		if kept == 0 {
			g.members = nil
		}
		g.forget(self, removed)
		return removed
	}
	next := grown(n)[:0]
	for i := range g.members {
		if drop(&g.members[i]) {
			removed = append(removed, g.members[i])
			continue
		}
		next = append(next, g.members[i])
	}
	if len(removed) == 0 {
		return nil
	}
	if len(next) == 0 {
		next = nil
	}
	g.members = next
	g.unpublish()
	g.forget(self, removed)
	return removed
}

func (g *Group) dropsOne(drop func(*Member) bool) bool {
	count := 0
	for i := range g.members {
		if drop(&g.members[i]) {
			if count++; count > 1 {
				return false
			}
		}
	}
	return count == 1
}

// forget updates the local count and the index for removed entries.
func (g *Group) forget(self string, removed []Member) {
	for _, m := range removed {
		if m.Node == self {
			g.local--
		}
		if g.index != nil && !g.indexCollided {
			delete(g.index, memberHash(m.Node, m.ID))
		}
	}
	switch {
	case g.index != nil && len(g.members) <= indexThreshold/2:
		g.index, g.indexCollided = nil, false
	case g.indexCollided:
		// A deleted hash may have been another member's too: rebuild.
		g.rebuildIndex()
	}
}
