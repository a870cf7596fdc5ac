package registry

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cpggo/cpg/crdt"
)

// Scope is a namespace of groups: the same group name in two scopes is two
// groups. A Scope is a cheap handle; it is safe for concurrent use.
type Scope struct {
	n   *Node
	idx *scopeIndex
}

// Name returns the scope's name.
func (s *Scope) Name() string { return s.idx.name }

// Group is the answer of a lookup: the stored group that matched the name
// (the name itself, or the most specific pattern) and its members. Members
// is shared and must not be modified.
type Group struct {
	Name    string
	Members []Member
}

// Join makes member a member of group, owned by this node. Joining again
// adds to the member's count, and it must then leave as many times (as in
// CPG). A non-nil meta replaces the member's metadata. group may be a
// pattern: lookups of every name it matches then find it.
//
// In a cluster, a change that comes alone (none made in the millisecond
// before) is handed to the overlay's links before Join returns, written
// to the sockets of the links with nothing queued, as OTP's pg sends
// before it returns; changes that follow quickly are sent together by the
// broadcast's goroutine, or, when it has let 256 of them wait, by the
// Join that queued the last (which, with 512 waiting, waits for a send
// under way to end first).
func (s *Scope) Join(group, member string, meta Meta) error {
	return s.change(crdt.Join, group, member, meta)
}

// Leave takes back one join of member to group. It fails with ErrNotMember,
// changing nothing, if this node's member is not in the group.
func (s *Scope) Leave(group, member string) error {
	return s.change(crdt.Leave, group, member, nil)
}

// SetMeta replaces the metadata of this node's member of group.
func (s *Scope) SetMeta(group, member string, meta Meta) error {
	return s.change(crdt.SetMeta, group, member, meta)
}

// change checks the input, then, under the node's lock, makes one change to
// this node's own members and hands its op to replication. Refused input
// changes nothing and consumes no sequence number.
func (s *Scope) change(kind crdt.OpKind, group, member string, meta Meta) error {
	if err := validateGroupName(group); err != nil {
		return err
	}
	if kind != crdt.Leave {
		if err := validateMember(member, meta); err != nil {
			return err
		}
		// The caller keeps its map; the registry's copy must never change.
		if len(meta) > 0 {
			meta = maps.Clone(meta)
		} else {
			meta = nil
		}
	}
	n := s.n
	n.mu.Lock()
	defer n.cluster.sendQueued() // after the unlock
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	var op crdt.Op
	var err error
	switch kind {
	case crdt.Join:
		op = n.state.LocalJoin(s.idx.name, group, member, 1, meta, n.cfg.Now().UnixNano())
	case crdt.Leave:
		op, err = n.state.LocalLeave(s.idx.name, group, member, 1)
	case crdt.SetMeta:
		op, err = n.state.LocalSetMeta(s.idx.name, group, member, meta)
	}
	if err != nil {
		return err
	}
	n.publish(op)
	return nil
}

// LeaveAll removes this node's member from every group of the scope, with
// all its joins, and returns the groups it left, sorted.
func (s *Scope) LeaveAll(member string) ([]string, error) {
	n := s.n
	n.mu.Lock()
	defer n.cluster.sendQueued() // after the unlock
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	var left []string
	n.state.OwnerGroups(n.name, func(g *crdt.Group) {
		if g.Scope != s.idx.name {
			return
		}
		if _, ok := g.Lookup(n.name, member); ok {
			left = append(left, g.Name)
		}
	})
	slices.Sort(left)
	for _, group := range left {
		e, _ := n.state.LocalEntry(s.idx.name, group, member)
		op, err := n.state.LocalLeave(s.idx.name, group, member, e.Count)
		if err != nil {
			return left, fmt.Errorf("registry: leave all of %q: %w", member, err)
		}
		n.publish(op)
	}
	return left, nil
}

// Members returns the members of the stored group that best matches the
// concrete name: the group of that name, or else the most specific
// pattern that matches it.
func (s *Scope) Members(name string) (Group, error) {
	v, snap, err := s.find(name)
	if err != nil {
		return Group{}, err
	}
	return Group{Name: v.name, Members: snap.members}, nil
}

// LocalMembers is Members restricted to this node's members.
func (s *Scope) LocalMembers(name string) (Group, error) {
	v, snap, err := s.find(name)
	if err != nil {
		return Group{}, err
	}
	return Group{Name: v.name, Members: snap.localMembers()}, nil
}

// RemoteMembers is Members restricted to other nodes' members.
func (s *Scope) RemoteMembers(name string) (Group, error) {
	v, snap, err := s.find(name)
	if err != nil {
		return Group{}, err
	}
	return Group{Name: v.name, Members: snap.remoteMembers()}, nil
}

func (s *Scope) find(name string) (*groupView, *snapshot, error) {
	// The full check only runs when the quick one fails: lookups are the hot
	// path, and a name that is not valid UTF-8 cannot be stored anyway.
	if name == "" || len(name) > MaxNameLen || strings.IndexByte(name, '*') >= 0 || strings.IndexByte(name, '?') >= 0 {
		if err := validateLookupName(name); err != nil {
			return nil, nil, err
		}
	}
	v := s.idx.lookup(name)
	if v == nil {
		return nil, nil, fmt.Errorf("%w: %q in scope %q", ErrNoSuchGroup, name, s.idx.name)
	}
	snap := s.n.snapshot(v)
	if len(snap.members) == 0 {
		// The group emptied between the index read and the snapshot.
		return nil, nil, fmt.Errorf("%w: %q in scope %q", ErrNoSuchGroup, name, s.idx.name)
	}
	return v, snap, nil
}

// Groups lists the scope's stored groups (names and patterns), sorted.
func (s *Scope) Groups() []string {
	n := s.n
	n.mu.Lock()
	defer n.mu.Unlock()
	var names []string
	n.state.Groups(s.idx.name, func(g *crdt.Group) { names = append(names, g.Name) })
	slices.Sort(names)
	return names
}

// MemberGroups lists the groups of the scope that a member with this ID
// (on any node) is in, sorted.
func (s *Scope) MemberGroups(member string) []string {
	n := s.n
	n.mu.Lock()
	defer n.mu.Unlock()
	var names []string
	n.state.Groups(s.idx.name, func(g *crdt.Group) {
		if slices.ContainsFunc(g.Members(), func(m Member) bool { return m.ID == member }) {
			names = append(names, g.Name)
		}
	})
	slices.Sort(names)
	return names
}

// JoinCount returns how many times member (on any node) joined the group
// stored under exactly the name group (a concrete name or a pattern) and
// has not left.
func (s *Scope) JoinCount(group, member string) (int, error) {
	if err := validateGroupName(group); err != nil {
		return 0, err
	}
	n := s.n
	n.mu.Lock()
	v := s.idx.stored(group)
	n.mu.Unlock()
	if v == nil {
		return 0, nil
	}
	count := 0
	for _, m := range n.snapshot(v).members {
		if m.ID == member {
			count += int(m.Count)
		}
	}
	return count, nil
}
