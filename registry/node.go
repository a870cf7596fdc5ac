package registry

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/crdt"
)

// DefaultScope is the scope Node.Default returns.
const DefaultScope = "default"

// Config sets up a Node. The zero value works for a single node.
type Config struct {
	// Name identifies this node in the cluster (default: the host name).
	Name string
	// Incarnation must grow at every start of a node with this name; the
	// default, the wall clock in nanoseconds, does.
	Incarnation uint64
	// RTT reports the measured round-trip time to a node, for the closest
	// and furthest picks. Nil means none is known: picks then prefer nodes
	// by name, so every caller still gets a stable answer.
	RTT func(node string) (time.Duration, bool)
	// Now is the clock for join times (default time.Now).
	Now func() time.Time
	// WatchBuffer is the default number of events a watch holds for a slow
	// reader before it overflows (default 1024).
	WatchBuffer int
	// OnLocalOp is called for every change this node makes to its own
	// members, in order, while the registry's lock is held: it must not
	// block or call back into the node. Replication hooks in here.
	OnLocalOp func(op *crdt.Op)
	// OnLocalState is called, under the same rules as OnLocalOp, when this
	// node refutes a claim about itself (a tombstone, or a second process
	// under its name): st is its whole state at its new incarnation, to
	// be broadcast and merged by peers (crdt.State.MergeOwner).
	OnLocalState func(st *crdt.OwnerState)
}

// Node is one node's registry: its own members and the replicas of every
// other node's. It is safe for concurrent use. Lookups take no lock that
// writers hold for long: exact lookups take none at all once a group's
// snapshot is built.
type Node struct {
	cfg  Config
	name string

	// mu serialises every change to the replicated state, the index and the
	// watches.
	mu       sync.Mutex
	state    *crdt.State
	closed   bool
	bindings map[*binding]struct{}

	// scopes is replaced, never modified, so readers load it without a lock.
	scopes atomic.Pointer[map[string]*scopeIndex]
}

// New starts a node.
func New(cfg Config) (*Node, error) {
	if cfg.Name == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("registry: no node name given and no host name: %w", err)
		}
		cfg.Name = host
	}
	if len(cfg.Name) > crdt.MaxNameLen {
		return nil, fmt.Errorf("registry: node name of %d bytes, more than %d", len(cfg.Name), crdt.MaxNameLen)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Incarnation == 0 {
		cfg.Incarnation = uint64(cfg.Now().UnixNano())
	}
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = 1024
	}
	n := &Node{cfg: cfg, name: cfg.Name, bindings: make(map[*binding]struct{})}
	n.state = crdt.New(crdt.Config{
		Self: cfg.Name, Incarnation: cfg.Incarnation, Observer: n.observe,
		Clock: func() uint64 { return uint64(cfg.Now().UnixNano()) },
	})
	empty := map[string]*scopeIndex{}
	n.scopes.Store(&empty)
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Scope returns the named scope, creating it if needed.
func (n *Node) Scope(name string) (*Scope, error) {
	if err := validateScope(name); err != nil {
		return nil, err
	}
	if x, ok := (*n.scopes.Load())[name]; ok {
		return &Scope{n: n, idx: x}, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return &Scope{n: n, idx: n.scopeLocked(name)}, nil
}

// Default returns the default scope.
func (n *Node) Default() *Scope {
	s, _ := n.Scope(DefaultScope)
	return s
}

// Scopes lists the scopes that hold groups, and the default scope, sorted.
func (n *Node) Scopes() []string {
	n.mu.Lock()
	names := n.state.Scopes()
	n.mu.Unlock()
	if !slices.Contains(names, DefaultScope) {
		names = append(names, DefaultScope)
		slices.Sort(names)
	}
	return names
}

// scopeLocked returns the index of a scope, creating it; n.mu is held.
func (n *Node) scopeLocked(name string) *scopeIndex {
	cur := *n.scopes.Load()
	if x, ok := cur[name]; ok {
		return x
	}
	next := make(map[string]*scopeIndex, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	x := newScopeIndex(name)
	next[name] = x
	n.scopes.Store(&next)
	return x
}

// observe keeps the index and the watches in step with the replicated
// state; the crdt calls it for every change, with n.mu held.
func (n *Node) observe(c *crdt.Change) {
	x := n.scopeLocked(c.Group.Scope)
	var v *groupView
	if c.GroupCreated {
		v = &groupView{name: c.Group.Name, group: c.Group}
		x.add(v)
	} else if v = x.stored(c.Group.Name); v == nil {
		panic(fmt.Sprintf("registry: index lost group %q of scope %q", c.Group.Name, c.Group.Scope))
	}
	v.snap.Store(nil)
	if c.GroupRemoved {
		x.remove(c.Group.Name)
	}
	if len(x.watches) > 0 {
		n.notify(x, c)
	}
}

// snapshot returns the current snapshot of v, building it if a change
// dropped it.
func (n *Node) snapshot(v *groupView) *snapshot {
	if s := v.snap.Load(); s != nil {
		return s
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := v.snap.Load(); s != nil {
		return s
	}
	s := buildSnapshot(v.group)
	v.snap.Store(s)
	return s
}

// Close ends every watch and context binding. Changes after Close fail with
// ErrClosed; lookups keep answering from the last state.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	for b := range n.bindings {
		b.stop()
	}
	clear(n.bindings)
	for _, x := range *n.scopes.Load() {
		for _, w := range x.watches {
			w.closeLocked(ErrClosed)
		}
		x.watches = nil
	}
	return nil
}

// publish hands ops this node made to the replication hook.
func (n *Node) publish(op *crdt.Op) {
	if n.cfg.OnLocalOp != nil {
		n.cfg.OnLocalOp(op)
	}
}

// The replication port: the network layer drives these.

// ApplyOp applies an op another node made, received from the network.
func (n *Node) ApplyOp(op *crdt.Op) crdt.Result {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.state.Apply(op)
	n.refuteLocked()
	return r
}

// Digest returns the replica's digest, for anti-entropy.
func (n *Node) Digest() crdt.Digest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.Digest()
}

// Delta returns what a peer with the given digest is missing.
func (n *Node) Delta(peer *crdt.Digest) crdt.Delta {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.state.Delta(peer)
	n.refuteLocked()
	return d
}

// Merge folds a peer's delta into the replica.
func (n *Node) Merge(d *crdt.Delta) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state.MergeAt(d, n.cfg.Now().UnixNano())
	n.refuteLocked()
}

// Tombstone purges a dead node's members; incarnation is the dead
// process's own, as the membership layer advertised it. For this node's
// own name it starts a new incarnation instead, and announces its members
// again as one state (Config.OnLocalState).
func (n *Node) Tombstone(owner string, incarnation uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state.Tombstone(owner, incarnation, n.cfg.Now().UnixNano())
	n.refuteLocked()
}

func (n *Node) refuteLocked() {
	if !n.state.NeedsRefute() {
		return
	}
	st := n.state.Refute()
	if n.cfg.OnLocalState != nil {
		n.cfg.OnLocalState(&st)
	}
}
