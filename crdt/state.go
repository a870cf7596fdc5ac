// Package crdt is the registry's replicated state: owner-authoritative
// entries, where every owner (a node incarnation) numbers its own changes
// and every replica applies them in order. Different owners touch disjoint
// entries, so their operations commute; per owner, (incarnation, seq) orders
// everything, and full-state merge keeps the higher version per owner. That
// makes merge a join-semilattice: commutative, associative and idempotent.
//
// The package is pure: no goroutines, no clock (times arrive in ops), no
// I/O. It is not safe for concurrent use; the registry serialises writers.
package crdt

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrNotMember is returned by a local leave or metadata update for an entry
// this node does not hold.
var ErrNotMember = errors.New("crdt: not a member")

// Result says what Apply did with an operation.
type Result uint8

const (
	// Applied: the op was the owner's next one and changed the state.
	Applied Result = iota + 1
	// Duplicate: the op was already applied (or superseded by a merge).
	Duplicate
	// Buffered: the op is ahead of a gap; it waits in a small buffer and the
	// caller should pull the owner's state from the sender.
	Buffered
	// Refused: the op is from a dead (tombstoned) or an older incarnation, or
	// it claims to be from this node: nothing changed.
	Refused
)

func (r Result) String() string {
	switch r {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Buffered:
		return "buffered"
	case Refused:
		return "refused"
	default:
		return fmt.Sprintf("Result(%d)", uint8(r))
	}
}

// ChangeKind says how an entry changed.
type ChangeKind uint8

const (
	Joined ChangeKind = iota + 1
	Left
	MetaChanged
)

func (k ChangeKind) String() string {
	switch k {
	case Joined:
		return "join"
	case Left:
		return "leave"
	case MetaChanged:
		return "meta"
	default:
		return fmt.Sprintf("ChangeKind(%d)", uint8(k))
	}
}

// Change is reported to the observer for every entry an op or a merge
// changes, in the order the owner made the changes.
type Change struct {
	Kind  ChangeKind
	Owner string
	Group *Group
	// Entry is the entry after the change; Count is 0 when it is gone.
	Entry Entry
	// GroupCreated: this change created the group. GroupRemoved: the group
	// is empty and gone from the state after this change.
	GroupCreated, GroupRemoved bool
}

// Config sets up a replica.
type Config struct {
	// Self is this node's name: the owner of the ops made with Local*.
	Self string
	// Incarnation is this start's incarnation; it must grow at every start.
	Incarnation uint64
	// PendingLimit bounds the ops buffered per owner ahead of a gap
	// (default 64). Past it, newer ops are dropped: the pull repairs them.
	PendingLimit int
	// Observer, if set, is called for every change, synchronously.
	Observer func(*Change)
}

// State is one replica of the registry.
type State struct {
	cfg        Config
	self       *owner
	owners     map[string]*owner
	tombstones map[string]uint64
	scopes     map[string]map[string]*Group
	// claim is the highest version someone else attributed to this node: a
	// tombstone for us or ops under our name that we did not make.
	claim Version
}

type owner struct {
	name    string
	version Version
	groups  map[*Group]int // entries per group
	pending []Op
}

// New returns a replica holding only this node's empty owner state.
func New(cfg Config) *State {
	if cfg.PendingLimit <= 0 {
		cfg.PendingLimit = 64
	}
	s := &State{
		cfg:        cfg,
		owners:     make(map[string]*owner),
		tombstones: make(map[string]uint64),
		scopes:     make(map[string]map[string]*Group),
	}
	s.self = s.newOwner(cfg.Self, Version{Incarnation: cfg.Incarnation})
	return s
}

func (s *State) newOwner(name string, v Version) *owner {
	o := &owner{name: name, version: v, groups: make(map[*Group]int)}
	s.owners[name] = o
	return o
}

// Self returns this node's name and current version.
func (s *State) Self() (string, Version) { return s.self.name, s.self.version }

// Owner returns an owner's version, if the replica knows the owner.
func (s *State) Owner(name string) (Version, bool) {
	if o, ok := s.owners[name]; ok {
		return o.version, true
	}
	return Version{}, false
}

// Owners lists the known owners (this node included), sorted.
func (s *State) Owners() []string {
	names := make([]string, 0, len(s.owners))
	for n := range s.owners {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tombstoned reports the incarnation up to which owner is known dead.
func (s *State) Tombstoned(name string) (uint64, bool) {
	inc, ok := s.tombstones[name]
	return inc, ok
}

// Group returns a group, or nil if no owner has entries in it.
func (s *State) Group(scope, name string) *Group { return s.scopes[scope][name] }

// Scopes lists the scopes that hold at least one group, sorted.
func (s *State) Scopes() []string {
	names := make([]string, 0, len(s.scopes))
	for n := range s.scopes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Groups calls fn for every group of scope, in no particular order.
func (s *State) Groups(scope string, fn func(*Group)) {
	for _, g := range s.scopes[scope] {
		fn(g)
	}
}

// OwnerGroups calls fn for every group in which owner has entries.
func (s *State) OwnerGroups(name string, fn func(*Group)) {
	if o, ok := s.owners[name]; ok {
		for g := range o.groups {
			fn(g)
		}
	}
}

// Apply applies an op received from the network (or replayed) and says what
// it did. Ops from this node's own name are only accepted as duplicates: a
// newer one means someone believes in a newer incarnation of us, and we
// refute it (NeedsRefute).
func (s *State) Apply(op *Op) Result {
	if op.Owner == s.self.name {
		if s.self.version.Less(op.Version()) {
			s.noteClaim(op.Version())
			return Refused
		}
		return Duplicate
	}
	if dead, ok := s.tombstones[op.Owner]; ok && op.Incarnation <= dead {
		return Refused
	}
	o := s.owners[op.Owner]
	if o == nil {
		o = s.newOwner(op.Owner, Version{Incarnation: op.Incarnation})
	}
	switch {
	case op.Incarnation < o.version.Incarnation:
		return Refused
	case op.Incarnation > o.version.Incarnation:
		// The owner restarted: its old process and everything it held is gone.
		s.clearOwner(o)
		o.version = Version{Incarnation: op.Incarnation}
		o.pending = dropThrough(o.pending, o.version)
	}
	switch {
	case op.Seq <= o.version.Seq:
		return Duplicate
	case op.Seq > o.version.Seq+1:
		s.buffer(o, op)
		return Buffered
	}
	s.applyEntry(o, op)
	o.version.Seq = op.Seq
	s.drainPending(o)
	return Applied
}

func (s *State) buffer(o *owner, op *Op) {
	i := sort.Search(len(o.pending), func(i int) bool { return !o.pending[i].Version().Less(op.Version()) })
	if i < len(o.pending) && o.pending[i].Version() == op.Version() {
		return
	}
	if len(o.pending) >= s.cfg.PendingLimit {
		if i == len(o.pending) {
			return
		}
		o.pending = o.pending[:len(o.pending)-1]
	}
	o.pending = append(o.pending, Op{})
	copy(o.pending[i+1:], o.pending[i:])
	o.pending[i] = *op
}

func (s *State) drainPending(o *owner) {
	o.pending = dropThrough(o.pending, o.version)
	for len(o.pending) > 0 {
		next := &o.pending[0]
		if next.Incarnation != o.version.Incarnation || next.Seq != o.version.Seq+1 {
			return
		}
		s.applyEntry(o, next)
		o.version.Seq = next.Seq
		o.pending = o.pending[1:]
	}
	if len(o.pending) == 0 {
		o.pending = nil
	}
}

// dropThrough removes buffered ops at or before v, and ops of older
// incarnations.
func dropThrough(pending []Op, v Version) []Op {
	i := 0
	for i < len(pending) && !v.Less(pending[i].Version()) {
		i++
	}
	if i == len(pending) {
		return nil
	}
	return pending[i:]
}

// Pending is the number of ops buffered for owner ahead of a gap.
func (s *State) Pending(name string) int {
	if o, ok := s.owners[name]; ok {
		return len(o.pending)
	}
	return 0
}

func (s *State) applyEntry(o *owner, op *Op) {
	switch op.Kind {
	case Join:
		s.join(o, op.Scope, op.Group, Entry{Member: op.Member, Count: op.Count, Joined: op.Time, Meta: op.Meta})
	case Leave:
		s.leave(o, op.Scope, op.Group, op.Member, op.Count)
	case SetMeta:
		s.setMeta(o, op.Scope, op.Group, op.Member, op.Meta)
	}
}

func (s *State) join(o *owner, scope, name string, e Entry) {
	if e.Count == 0 {
		return
	}
	if len(e.Meta) == 0 {
		e.Meta = nil
	}
	groups := s.scopes[scope]
	if groups == nil {
		groups = make(map[string]*Group)
		s.scopes[scope] = groups
	}
	g := groups[name]
	created := g == nil
	if created {
		g = &Group{Scope: scope, Name: name}
		groups[name] = g
	}
	var after Member
	if i := g.find(o.name, e.Member); i >= 0 {
		after = g.members[i]
		// Saturate: a count wrapped to 0 would be an entry no peer can
		// decode, breaking anti-entropy with this replica.
		after.Count += min(e.Count, math.MaxUint32-after.Count)
		if len(e.Meta) > 0 {
			after.Meta = e.Meta
		}
		g.replace(i, after)
	} else {
		after = Member{ID: e.Member, Node: o.name, Joined: e.Joined, Meta: e.Meta, Count: e.Count}
		g.insert(after, s.self.name)
		o.groups[g]++
	}
	s.notify(&Change{Kind: Joined, Owner: o.name, Group: g, Entry: after.entry(), GroupCreated: created})
}

func (s *State) leave(o *owner, scope, name, member string, count uint32) {
	g := s.scopes[scope][name]
	if g == nil || count == 0 {
		return
	}
	i := g.find(o.name, member)
	if i < 0 {
		return
	}
	if cur := g.members[i]; count < cur.Count {
		cur.Count -= count
		g.replace(i, cur)
		s.notify(&Change{Kind: Left, Owner: o.name, Group: g, Entry: cur.entry()})
		return
	}
	s.removeEntries(o, g, func(m *Member) bool { return m.Node == o.name && m.ID == member })
}

func (s *State) setMeta(o *owner, scope, name, member string, meta Meta) {
	g := s.scopes[scope][name]
	if g == nil {
		return
	}
	if len(meta) == 0 {
		meta = nil
	}
	if i := g.find(o.name, member); i >= 0 {
		cur := g.members[i]
		cur.Meta = meta
		g.replace(i, cur)
		s.notify(&Change{Kind: MetaChanged, Owner: o.name, Group: g, Entry: cur.entry()})
	}
}

// removeEntries removes o's entries that drop selects from g, in one copy
// of the group, and reports each as a leave to count 0.
func (s *State) removeEntries(o *owner, g *Group, drop func(*Member) bool) {
	removed := g.removeWhere(s.self.name, drop)
	if len(removed) == 0 {
		return
	}
	if o.groups[g] -= len(removed); o.groups[g] <= 0 {
		delete(o.groups, g)
	}
	last := len(removed) - 1
	for i, m := range removed {
		e := m.entry()
		e.Count = 0
		gone := i == last && g.Len() == 0
		if gone {
			// Observers see the group in the state up to its last change.
			groups := s.scopes[g.Scope]
			delete(groups, g.Name)
			if len(groups) == 0 {
				delete(s.scopes, g.Scope)
			}
		}
		s.notify(&Change{Kind: Left, Owner: o.name, Group: g, Entry: e, GroupRemoved: gone})
	}
}

// clearOwner removes every entry of o, reporting each as a leave.
func (s *State) clearOwner(o *owner) {
	for _, g := range sortedGroups(o.groups) {
		s.removeEntries(o, g, func(m *Member) bool { return m.Node == o.name })
	}
}

func (s *State) notify(c *Change) {
	if s.cfg.Observer != nil {
		s.cfg.Observer(c)
	}
}

// sortedGroups orders groups so that what a replica reports does not depend
// on map iteration order.
func sortedGroups(set map[*Group]int) []*Group {
	gs := make([]*Group, 0, len(set))
	for g := range set {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].Scope != gs[j].Scope {
			return gs[i].Scope < gs[j].Scope
		}
		return gs[i].Name < gs[j].Name
	})
	return gs
}

// Tombstone records that owner is dead up to incarnation inc: its entries
// go, and its ops from that or an older incarnation are refused from now
// on. A tombstone for this node is recorded but not obeyed: the node
// refutes it (NeedsRefute) by moving to a newer incarnation.
// It reports whether anything changed.
func (s *State) Tombstone(name string, inc uint64) bool {
	if dead, ok := s.tombstones[name]; ok && dead >= inc {
		return false
	}
	s.tombstones[name] = inc
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
		delete(s.owners, name)
	}
	return true
}

func (s *State) noteClaim(v Version) {
	if s.claim.Less(v) {
		s.claim = v
	}
}

// NeedsRefute reports whether some replica holds a tombstone for this node,
// or ops under its name that it did not make: Refute answers that.
func (s *State) NeedsRefute() bool { return s.self.version.Less(s.claim) }
