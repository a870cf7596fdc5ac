package registry

import "github.com/cpggo/cpg/crdt"

// Size counts the scope's stored groups (names and patterns) and the
// members in them (a member in two groups counts twice), over every node's
// members. With Node.Summary it describes a replica in a few numbers that
// are equal on every converged node.
func (s *Scope) Size() (groups, members int) {
	n := s.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state.Groups(s.idx.name, func(g *crdt.Group) {
		groups++
		members += len(g.Members())
	})
	return groups, members
}
