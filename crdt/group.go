package crdt

// Entry is one member of one group as one owner holds it.
type Entry struct {
	Member string
	Count  uint32
	Joined int64 // Unix nanoseconds of the join that created the entry, by the owner's clock
	Meta   Meta
}

// indexThreshold is the size above which an owner's slice of a group gets a
// member index: below it a linear scan is faster than hashing, above it a
// big group would make every join O(group size), which is pg's weakness.
const indexThreshold = 16

// Group is one named group of one scope, holding every owner's entries for
// it. It is the unit the registry indexes and snapshots.
type Group struct {
	Scope string
	Name  string
	// Owners are few per group, so a slice beats a map.
	owners []*ownerEntries
	size   int
}

type ownerEntries struct {
	owner   *owner
	entries []Entry
	index   map[string]int32
}

// Len is the number of distinct (owner, member) entries in the group.
func (g *Group) Len() int { return g.size }

// Each calls fn for every entry of the group with its owner's name, owner by
// owner. fn must not keep e.
func (g *Group) Each(fn func(owner string, e *Entry)) {
	for _, oe := range g.owners {
		for i := range oe.entries {
			fn(oe.owner.name, &oe.entries[i])
		}
	}
}

// Lookup returns owner's entry for member, if any.
func (g *Group) Lookup(owner, member string) (Entry, bool) {
	oe := g.ownerEntries(owner)
	if oe == nil {
		return Entry{}, false
	}
	if i := oe.find(member); i >= 0 {
		return oe.entries[i], true
	}
	return Entry{}, false
}

func (g *Group) ownerEntries(owner string) *ownerEntries {
	for _, oe := range g.owners {
		if oe.owner.name == owner {
			return oe
		}
	}
	return nil
}

func (g *Group) ownerEntriesFor(o *owner) *ownerEntries {
	for _, oe := range g.owners {
		if oe.owner == o {
			return oe
		}
	}
	oe := &ownerEntries{owner: o}
	g.owners = append(g.owners, oe)
	return oe
}

func (g *Group) dropOwner(oe *ownerEntries) {
	for i, x := range g.owners {
		if x == oe {
			last := len(g.owners) - 1
			g.owners[i] = g.owners[last]
			g.owners[last] = nil
			g.owners = g.owners[:last]
			return
		}
	}
}

func (oe *ownerEntries) find(member string) int {
	if oe.index != nil {
		if i, ok := oe.index[member]; ok {
			return int(i)
		}
		return -1
	}
	for i := range oe.entries {
		if oe.entries[i].Member == member {
			return i
		}
	}
	return -1
}

func (oe *ownerEntries) add(e Entry) {
	oe.entries = append(oe.entries, e)
	if oe.index != nil {
		oe.index[e.Member] = int32(len(oe.entries) - 1)
	} else if len(oe.entries) > indexThreshold {
		oe.index = make(map[string]int32, len(oe.entries))
		for i := range oe.entries {
			oe.index[oe.entries[i].Member] = int32(i)
		}
	}
}

// remove drops entry i by moving the last entry into its place: order
// within an owner's slice carries no meaning.
func (oe *ownerEntries) remove(i int) {
	last := len(oe.entries) - 1
	if oe.index != nil {
		delete(oe.index, oe.entries[i].Member)
		if i != last {
			oe.index[oe.entries[last].Member] = int32(i)
		}
	}
	oe.entries[i] = oe.entries[last]
	oe.entries[last] = Entry{}
	oe.entries = oe.entries[:last]
	if oe.index != nil && len(oe.entries) <= indexThreshold/2 {
		oe.index = nil
	}
}
