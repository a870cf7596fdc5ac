package crdt

import "sort"

// ownerGroups counts an owner's entries per group. Most owners are in a
// few groups, and a replica holds one record per owner of the cluster: a
// short slice scanned in place costs a fraction of a map's memory there.
// Past ownerGroupsScan groups a map takes over, so an owner in thousands
// of groups still finds one in O(1).
type ownerGroups struct {
	few  []groupCount
	many map[*Group]int
}

type groupCount struct {
	g *Group
	n int
}

const ownerGroupsScan = 16

// add adds delta to g's count, forgetting g at zero or below.
func (og *ownerGroups) add(g *Group, delta int) {
	if og.many != nil {
		if og.many[g] += delta; og.many[g] <= 0 {
			delete(og.many, g)
		}
		return
	}
	for i := range og.few {
		if og.few[i].g == g {
			if og.few[i].n += delta; og.few[i].n <= 0 {
				last := len(og.few) - 1
				og.few[i] = og.few[last]
				og.few[last] = groupCount{}
				og.few = og.few[:last]
			}
			return
		}
	}
	if delta <= 0 {
		return
	}
	if len(og.few) < ownerGroupsScan {
		og.few = append(og.few, groupCount{g, delta})
		return
	}
	og.many = make(map[*Group]int, 2*ownerGroupsScan)
	for _, gc := range og.few {
		og.many[gc.g] = gc.n
	}
	og.many[g] = delta
	og.few = nil
}

// count returns g's count (0 if the owner has no entry in g).
func (og *ownerGroups) count(g *Group) int {
	if og.many != nil {
		return og.many[g]
	}
	for _, gc := range og.few {
		if gc.g == g {
			return gc.n
		}
	}
	return 0
}

// each calls fn for every group, in no particular order.
func (og *ownerGroups) each(fn func(*Group)) {
	for _, gc := range og.few {
		fn(gc.g)
	}
	for g := range og.many {
		fn(g)
	}
}

// sorted returns the groups ordered by (scope, name), so that what a
// replica reports does not depend on the order groups were added in.
func (og *ownerGroups) sorted() []*Group {
	gs := make([]*Group, 0, len(og.few)+len(og.many))
	og.each(func(g *Group) { gs = append(gs, g) })
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].Scope != gs[j].Scope {
			return gs[i].Scope < gs[j].Scope
		}
		return gs[i].Name < gs[j].Name
	})
	return gs
}
