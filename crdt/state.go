// Package crdt is the registry's replicated state: owner-authoritative
// entries, where every owner (a node incarnation) numbers its own changes
// and every replica applies them in order. Different owners touch disjoint
// entries, so their operations commute; per owner, (incarnation, seq) orders
// everything, and full-state merge keeps the higher version per owner. That
// makes merge a join-semilattice: commutative, associative and idempotent.
// Ops buffered ahead of a gap are outside the lattice: a merge that fills
// the gap drains them, so with buffers merge is commutative only once
// every gap is filled (replicas converge then, which the property tests
// check with restarts, tombstones, refutes and collection).
//
// Each owner's op stream is also summed up in a chain hash, carried by
// digest lines and owner states, so that two processes reusing one name
// and incarnation are told apart (Conflicts, NeedsRefute). A digest's
// lines are summed into one hash and DigestBuckets bucket hashes, kept
// current as the state changes, so that peers compare a few bytes before
// exchanging lines (Summary, BucketHashes, DigestOf, DeltaOf).
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
	// Clock, if set, reads the clock incarnations are taken from (the
	// registry uses the wall clock in nanoseconds). A refute moves to
	// max(Clock(), last known incarnation + 1): incarnations stay close to
	// the clock, so the next start (which reads the clock) is above them,
	// and a clock that went backwards still yields an incarnation above
	// every one the cluster has seen. Nil: incarnations count up by one.
	Clock func() uint64
	// Alive, if set, says whether the membership layer lists owner as a
	// live node. A replica never applies or merges in entries of an owner
	// it rejects: that is what lets tombstones be collected without
	// resurrecting anyone. Nil: every owner is alive.
	Alive func(owner string) bool
	// PendingLimit bounds the ops buffered per owner ahead of a gap
	// (default 64). Past it, newer ops are dropped: the pull repairs them.
	PendingLimit int
	// Observer, if set, is called for every change, synchronously. The
	// Change is the replica's own and is reused for the next one: an
	// observer that keeps it past the call keeps a copy.
	Observer func(*Change)
	// Intern, if set, gives the one copy of a string that the replica
	// keeps instead of the one it was handed: every owner name, scope,
	// group and member ID it stores goes through it. Strings decoded from
	// the wire are fresh copies on every replica; replicas that share an
	// interner (the simulator's, with Intern) hold each name once between
	// them. Nil: strings are kept as given.
	Intern func(string) string
}

// State is one replica of the registry.
type State struct {
	cfg        Config
	self       *owner
	owners     map[string]*owner
	tombstones map[string]*tombstone
	scopes     map[string]map[string]*Group
	// claim is the highest version someone else attributed to this node: a
	// tombstone for us or ops under our name that we did not make.
	claim Version
	// selfConflict: a peer holds this node's current version with another
	// chain: a second process runs under our name and incarnation.
	selfConflict bool
	conflicts    uint64
	// lastNow is the latest time a caller passed to Tombstone: the time a
	// tombstone learned from a peer is stamped with.
	lastNow int64
	digest  digestHashes
	// lastGroup is the group the latest change found or made (see group);
	// nil once that group is gone.
	lastGroup *Group
	// change is what notify hands the observer: one per replica rather
	// than one allocated per applied op.
	change Change
}

type owner struct {
	name    string
	bucket  int
	version Version
	// chain hashes the owner's op stream up to version (0 at seq 0).
	chain uint64
	// line is the hash of the owner's digest line (0 at seq 0: no line).
	line    uint64
	groups  ownerGroups // entries per group
	pending []Op
	// conflictAt is the last version at which a conflicting chain was
	// counted, so one conflict seen in many exchanges counts once.
	conflictAt Version
}

type tombstone struct {
	inc uint64
	at  int64 // when it was recorded, in the caller's time unit
}

// New returns a replica holding only this node's empty owner state.
func New(cfg Config) *State {
	if cfg.PendingLimit <= 0 {
		cfg.PendingLimit = 64
	}
	s := &State{
		cfg:        cfg,
		owners:     make(map[string]*owner),
		tombstones: make(map[string]*tombstone),
		scopes:     make(map[string]map[string]*Group),
	}
	s.self = s.newOwner(cfg.Self, Version{Incarnation: cfg.Incarnation})
	return s
}

func (s *State) newOwner(name string, v Version) *owner {
	name = s.intern(name)
	o := &owner{name: name, bucket: Bucket(name), version: v}
	s.owners[name] = o
	s.digest.addName(name)
	return o
}

// setVersion moves o to v with chain, keeping the digest hashes current.
func (s *State) setVersion(o *owner, v Version, chain uint64) {
	if o.version.Seq > 0 {
		s.digest.remove(o.bucket, o.line)
	}
	o.version, o.chain, o.line = v, chain, 0
	if v.Seq > 0 {
		o.line = ownerLineHash(o.name, v, chain)
		s.digest.add(o.bucket, o.line)
	}
}

// deleteOwner forgets o, whose entries are already gone.
func (s *State) deleteOwner(o *owner) {
	s.setVersion(o, Version{}, 0)
	delete(s.owners, o.name)
	if _, dead := s.tombstones[o.name]; !dead {
		s.digest.removeName(o.name)
	}
}

func (s *State) intern(str string) string {
	if s.cfg.Intern == nil {
		return str
	}
	return s.cfg.Intern(str)
}

func (s *State) alive(name string) bool { return s.cfg.Alive == nil || s.cfg.Alive(name) }

// Self returns this node's name and current version.
func (s *State) Self() (string, Version) { return s.self.name, s.self.version }

// Owner returns an owner's version, if the replica knows the owner.
func (s *State) Owner(name string) (Version, bool) {
	if o, ok := s.owners[name]; ok {
		return o.version, true
	}
	return Version{}, false
}

// Known reports whether this replica already has what an op (or a state)
// of owner at version v would bring: it holds that version or a newer one,
// it buffers that op, or a tombstone refuses it. This is the broadcast's
// "is stale" question.
func (s *State) Known(name string, v Version) bool {
	if t, ok := s.tombstones[name]; ok && v.Incarnation <= t.inc && name != s.self.name {
		return true
	}
	o, ok := s.owners[name]
	if !ok {
		return false
	}
	if !o.version.Less(v) {
		return true
	}
	for i := range o.pending {
		if o.pending[i].Version() == v {
			return true
		}
	}
	return false
}

// Holds reports whether Apply would find every op of owner's incarnation
// v.Incarnation up to v.Seq a Duplicate: the replica holds that
// incarnation at v or later, and neither a tombstone nor Config.Alive
// refuses the owner. A receiver that checks this before decoding a batch
// spends nothing on the copies of it that other paths bring.
func (s *State) Holds(name string, v Version) bool {
	if name == s.self.name {
		return !s.self.version.Less(v)
	}
	if !s.alive(name) {
		return false
	}
	if t, ok := s.tombstones[name]; ok && v.Incarnation <= t.inc {
		return false
	}
	o, ok := s.owners[name]
	return ok && o.version.Incarnation == v.Incarnation && v.Seq <= o.version.Seq
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
	if t, ok := s.tombstones[name]; ok {
		return t.inc, true
	}
	return 0, false
}

// Conflicts counts the reused incarnations seen: an owner's version held
// with two different chains (two processes that started under one name
// with one incarnation). Each (owner, version) counts once.
func (s *State) Conflicts() uint64 { return s.conflicts }

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
		o.groups.each(fn)
	}
}

// Apply applies an op received from the network (or replayed) and says what
// it did. Ops from this node's own name are only accepted as duplicates: a
// newer one means someone believes in a newer incarnation of us, and we
// refute it (NeedsRefute). Ops of an owner that Config.Alive rejects are
// refused.
//
// An op of a newer incarnation than the replica holds replaces the owner's
// entries only if it is that incarnation's first op (a new process starts
// empty). A later one waits in the buffer with the old entries left in
// place: the gap before it may be a refute, which carries the owner's
// entries over to the new incarnation, so emptying the owner now would
// show every member leaving and coming back.
func (s *State) Apply(op *Op) Result {
	if op.Owner == s.self.name {
		if s.self.version.Less(op.Version()) {
			s.noteClaim(op.Version())
			return Refused
		}
		return Duplicate
	}
	if !s.alive(op.Owner) {
		return Refused
	}
	if t, ok := s.tombstones[op.Owner]; ok && op.Incarnation <= t.inc {
		return Refused
	}
	o := s.owners[op.Owner]
	if o == nil {
		o = s.newOwner(op.Owner, Version{Incarnation: op.Incarnation})
	}
	switch {
	case op.Incarnation < o.version.Incarnation:
		return Refused
	case op.Incarnation > o.version.Incarnation && op.Seq > 1,
		op.Incarnation == o.version.Incarnation && op.Seq > o.version.Seq+1:
		s.buffer(o, op)
		return Buffered
	case op.Incarnation == o.version.Incarnation && op.Seq <= o.version.Seq:
		return Duplicate
	}
	s.applyOp(o, op)
	s.drainPending(o)
	return Applied
}

// RunResult says what ApplyRun did with a run's ops.
type RunResult struct {
	// Applied and Buffered count the ops that applied and that wait
	// ahead of a gap.
	Applied, Buffered int
	// Last is what Apply returned for the run's last op.
	Last Result
}

// ApplyRun applies a run, consecutive ops of one owner and incarnation
// with seqs one apart (as DecodeRun returns them), exactly as Apply would
// one by one. When the run starts at or before the owner's next op and
// nothing waits ahead of a gap, the owner's checks (liveness, tombstone,
// incarnation) are made once and its digest line is moved once, after the
// last op, rather than per op.
func (s *State) ApplyRun(ops []Op) RunResult {
	var res RunResult
	if len(ops) == 0 {
		return res
	}
	first := &ops[0]
	o := s.owners[first.Owner]
	t, dead := s.tombstones[first.Owner]
	if o == nil || o == s.self || len(o.pending) > 0 || !s.alive(first.Owner) ||
		(dead && first.Incarnation <= t.inc) || first.Incarnation != o.version.Incarnation ||
		first.Seq > o.version.Seq+1 || o.version.Seq == 0 || !isRun(ops) {
		for i := range ops {
			switch res.Last = s.Apply(&ops[i]); res.Last {
			case Applied:
				res.Applied++
			case Buffered:
				res.Buffered++
			}
		}
		return res
	}
	v, chain := o.version, o.chain
	res.Last = Duplicate
	for i := range ops {
		op := &ops[i]
		if op.Seq <= v.Seq {
			continue
		}
		s.applyEntry(o, op)
		v, chain = op.Version(), chainOp(chain, op)
		res.Applied++
		res.Last = Applied
	}
	if res.Applied > 0 {
		s.setVersion(o, v, chain)
	}
	return res
}

// isRun reports whether ops are consecutive ops of one owner and
// incarnation.
func isRun(ops []Op) bool {
	for i := 1; i < len(ops); i++ {
		if ops[i].Owner != ops[0].Owner || ops[i].Incarnation != ops[0].Incarnation || ops[i].Seq != ops[i-1].Seq+1 {
			return false
		}
	}
	return true
}

// applyOp applies the owner's next op: the next seq of its incarnation, or
// the first op of a newer one (which starts from nothing).
func (s *State) applyOp(o *owner, op *Op) {
	chain := o.chain
	if op.Incarnation != o.version.Incarnation {
		s.clearOwner(o)
		chain = 0
	}
	s.applyEntry(o, op)
	s.setVersion(o, op.Version(), chainOp(chain, op))
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
		sameInc := next.Incarnation == o.version.Incarnation && next.Seq == o.version.Seq+1
		restart := next.Incarnation > o.version.Incarnation && next.Seq == 1
		if !sameInc && !restart {
			break
		}
		s.applyOp(o, next)
		o.pending = dropThrough(o.pending[1:], o.version)
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
	g := s.group(scope, name)
	created := g == nil
	if created {
		groups := s.scopes[scope]
		if groups == nil {
			scope = s.intern(scope)
			groups = make(map[string]*Group)
			s.scopes[scope] = groups
		}
		g = &Group{Scope: s.intern(scope), Name: s.intern(name)}
		groups[g.Name] = g
		s.lastGroup = g
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
		after = Member{ID: s.intern(e.Member), Node: o.name, Joined: e.Joined, Meta: e.Meta, Count: e.Count}
		g.insert(after, s.self.name)
		o.groups.add(g, 1)
	}
	s.notify(Change{Kind: Joined, Owner: o.name, Group: g, Entry: after.entry(), GroupCreated: created})
}

func (s *State) leave(o *owner, scope, name, member string, count uint32) {
	g := s.group(scope, name)
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
		s.notify(Change{Kind: Left, Owner: o.name, Group: g, Entry: cur.entry()})
		return
	}
	s.removeEntries(o, g, func(m *Member) bool { return m.Node == o.name && m.ID == member })
}

func (s *State) setMeta(o *owner, scope, name, member string, meta Meta) {
	g := s.group(scope, name)
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
		s.notify(Change{Kind: MetaChanged, Owner: o.name, Group: g, Entry: cur.entry()})
	}
}

// group returns the stored group scope/name, or nil. The ops of a burst
// mostly name the group the previous op did: that one is compared first,
// before two lookups by name.
func (s *State) group(scope, name string) *Group {
	if g := s.lastGroup; g != nil && g.Name == name && g.Scope == scope {
		return g
	}
	g := s.scopes[scope][name]
	if g != nil {
		s.lastGroup = g
	}
	return g
}

// removeEntries removes o's entries that drop selects from g, in one copy
// of the group, and reports each as a leave to count 0.
func (s *State) removeEntries(o *owner, g *Group, drop func(*Member) bool) {
	removed := g.removeWhere(s.self.name, drop)
	if len(removed) == 0 {
		return
	}
	o.groups.add(g, -len(removed))
	last := len(removed) - 1
	for i, m := range removed {
		e := m.entry()
		e.Count = 0
		gone := i == last && g.Len() == 0
		if gone {
			// Observers see the group in the state up to its last change.
			groups := s.scopes[g.Scope]
			delete(groups, g.Name)
			if s.lastGroup == g {
				s.lastGroup = nil
			}
			if len(groups) == 0 {
				delete(s.scopes, g.Scope)
			}
		}
		s.notify(Change{Kind: Left, Owner: o.name, Group: g, Entry: e, GroupRemoved: gone})
	}
}

// clearOwner removes every entry of o, reporting each as a leave.
func (s *State) clearOwner(o *owner) {
	for _, g := range o.groups.sorted() {
		s.removeEntries(o, g, func(m *Member) bool { return m.Node == o.name })
	}
}

func (s *State) notify(c Change) {
	if s.cfg.Observer != nil {
		s.change = c
		s.cfg.Observer(&s.change)
		// Let go of the group and metadata until the next change.
		s.change = Change{}
	}
}
