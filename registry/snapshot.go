package registry

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/cpggo/cpg/crdt"
)

// groupView is what readers see of one stored group: an immutable snapshot
// of its members, rebuilt on the first read after a change. Writers only
// drop the snapshot, so a join costs O(1) however big the group is, and a
// burst of joins into one group costs one rebuild, not one per join.
type groupView struct {
	name  string
	group *crdt.Group // guarded by Node.mu
	snap  atomic.Pointer[snapshot]
}

// snapshot holds a group's members with this node's members first, so that
// local and remote lookups are subslices and allocate nothing. Each part is
// ordered oldest first (Joined, then Node, then ID): the same order on every
// node.
type snapshot struct {
	members      []Member
	local        int
	localWeight  int
	remoteWeight int
}

func (s *snapshot) localMembers() []Member  { return s.members[:s.local] }
func (s *snapshot) remoteMembers() []Member { return s.members[s.local:] }

func buildSnapshot(g *crdt.Group, self string) *snapshot {
	s := &snapshot{members: make([]Member, 0, g.Len())}
	g.Each(func(owner string, e *crdt.Entry) {
		s.members = append(s.members, Member{ID: e.Member, Node: owner, Count: int(e.Count), Joined: e.Joined, Meta: e.Meta})
	})
	slices.SortFunc(s.members, func(a, b Member) int {
		if al, bl := a.Node == self, b.Node == self; al != bl {
			if al {
				return -1
			}
			return 1
		}
		return compareAge(&a, &b)
	})
	for i := range s.members {
		if s.members[i].Node != self {
			break
		}
		s.local++
	}
	for i := range s.members {
		if i < s.local {
			s.localWeight += s.members[i].Count
		} else {
			s.remoteWeight += s.members[i].Count
		}
	}
	return s
}

// compareAge orders members by join time, with node and ID breaking ties so
// that every node agrees.
func compareAge(a, b *Member) int {
	if c := cmp.Compare(a.Joined, b.Joined); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}
