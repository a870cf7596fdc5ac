package registry

import (
	"cmp"
	"sync/atomic"

	"github.com/cpggo/cpg/crdt"
)

// groupView is what readers see of one stored group: a snapshot of its
// members, taken on the first read after a change. Writers only drop it, so
// a burst of joins into one group costs one snapshot, not one per join.
type groupView struct {
	name  string
	group *crdt.Group // guarded by Node.mu
	snap  atomic.Pointer[snapshot]
}

// snapshot holds a group's members with this node's members first, so that
// local and remote lookups are subslices and allocate nothing. Each part is
// ordered oldest first (Joined, then Node, then ID): the same order on every
// node. The weights are the join counts summed, for weighted picks.
type snapshot struct {
	members      []Member
	local        int
	localWeight  int
	remoteWeight int
}

func (s *snapshot) localMembers() []Member  { return s.members[:s.local] }
func (s *snapshot) remoteMembers() []Member { return s.members[s.local:] }

// buildSnapshot takes the group's current members: the crdt keeps them in
// lookup order in a copy-on-write slice, so this copies nothing.
func buildSnapshot(g *crdt.Group) *snapshot {
	s := &snapshot{members: g.Members(), local: g.Local()}
	for i := range s.members {
		if i < s.local {
			s.localWeight += int(s.members[i].Count)
		} else {
			s.remoteWeight += int(s.members[i].Count)
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
