package registry

import (
	"errors"
	"fmt"
	"log/slog"
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
	// WatchBuffer is how many recent changes of a scope the node keeps for
	// its watches once the scope is watched (default DefaultWatchBuffer):
	// a watch whose unread changes leave this journal overflows, and a
	// watch resumes only from a change the journal still holds.
	WatchBuffer int
	// Cluster, when set, makes the node a member of a cluster: it runs the
	// overlay, the failure detector and the broadcast, and replicates every
	// scope with the other nodes. Nil: a node on its own.
	Cluster *ClusterConfig
	// Logger receives the node's notable events (default: discarded).
	Logger *slog.Logger
	// MaxScopes, when positive, bounds the scopes Node.Scope creates: past
	// it, a new scope is refused with ErrTooManyScopes (scopes that other
	// nodes replicate here are never refused). 0 means no bound.
	MaxScopes int

	// onLocalOp and onLocalState see, in order and under the node's lock,
	// every op this node makes and every state it announces after a
	// refute: the package's tests carry them between nodes by hand.
	onLocalOp    func(op *crdt.Op)
	onLocalState func(st *crdt.OwnerState)
}

// DefaultWatchBuffer is Config.WatchBuffer's default: room for a burst of
// a few thousand joins made on another node, which arrives as a few
// batches applied back to back, faster than any reader takes them.
const DefaultWatchBuffer = 4096

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
	// seq numbers the changes applied, in every scope: a watch's position.
	seq uint64
	// nodeFeed hands the cluster's status changes to WatchNodes' watches.
	nodeFeed nodeFeed
	changes  changeCounter // what observe saw, for Stats
	// lastChanged: see observe.
	lastChanged lastChanged
	// records is what is left of the slab record takes journal records
	// from.
	records []Record
	// merging is set while a batch received from a peer is applied: its
	// records wait in held and reach the journals together at its end,
	// stamped with that moment (see holdRecords).
	merging bool
	held    []heldRecord

	// scopes maps a scope's name to its *scopeIndex. Readers load it
	// without a lock; entries are only added, under mu, and never removed,
	// so a Scope handle stays valid. A sync.Map, not a map copied on every
	// new scope, so that creating the ten-thousandth scope costs what
	// creating the first did.
	scopes     sync.Map
	scopeCount atomic.Int64

	// cluster is set once at start when the node runs in a cluster.
	cluster *cluster
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
	if reason := textProblem(cfg.Name); reason != "" {
		return nil, fmt.Errorf("registry: node name %q: %s", cfg.Name, reason)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Incarnation == 0 {
		cfg.Incarnation = uint64(cfg.Now().UnixNano())
	}
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = DefaultWatchBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, name: cfg.Name, bindings: make(map[*binding]struct{})}
	n.state = crdt.New(crdt.Config{
		Self: cfg.Name, Incarnation: cfg.Incarnation, Observer: n.observe,
		Clock: func() uint64 { return uint64(cfg.Now().UnixNano()) },
		Alive: n.mayHold,
	})
	if cfg.Cluster != nil {
		if err := n.startCluster(*cfg.Cluster); err != nil {
			return nil, err
		}
		if n.cfg.RTT == nil {
			n.cfg.RTT = n.cluster.overlay.RTT
		}
	}
	return n, nil
}

// mayHold reports whether this replica may hold entries of owner: not when
// the failure detector declared it dead or gone. n.mu is held.
func (n *Node) mayHold(owner string) bool {
	return n.cluster == nil || !n.cluster.gone[owner]
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// ErrTooManyScopes: Node.Scope would create a scope past Config.MaxScopes.
var ErrTooManyScopes = errors.New("registry: too many scopes")

// Scope returns the named scope, creating it if needed.
func (n *Node) Scope(name string) (*Scope, error) {
	if err := validateScope(name); err != nil {
		return nil, err
	}
	if x := n.loadScope(name); x != nil {
		return &Scope{n: n, idx: x}, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if x := n.loadScope(name); x != nil {
		return &Scope{n: n, idx: x}, nil
	}
	if limit := n.cfg.MaxScopes; limit > 0 && n.scopeCount.Load() >= int64(limit) {
		return nil, fmt.Errorf("%w: %q would be scope %d, more than %d", ErrTooManyScopes, name, n.scopeCount.Load()+1, limit)
	}
	return &Scope{n: n, idx: n.scopeLocked(name)}, nil
}

// LookupScope returns the named scope if this node knows it, and never
// creates one: reads must not grow the registry. A node knows the default
// scope, every scope Node.Scope returned, and every scope a change (its
// own or a replicated one) touched since it started.
func (n *Node) LookupScope(name string) (*Scope, bool) {
	if x := n.loadScope(name); x != nil {
		return &Scope{n: n, idx: x}, true
	}
	if name == DefaultScope {
		return n.Default(), true
	}
	return nil, false
}

// ScopeCount returns how many scopes the node knows (see LookupScope),
// the default scope once it was used.
func (n *Node) ScopeCount() int { return int(n.scopeCount.Load()) }

func (n *Node) loadScope(name string) *scopeIndex {
	if x, ok := n.scopes.Load(name); ok {
		return x.(*scopeIndex)
	}
	return nil
}

// Default returns the default scope. It is never refused, whatever
// Config.MaxScopes says.
func (n *Node) Default() *Scope {
	if x := n.loadScope(DefaultScope); x != nil {
		return &Scope{n: n, idx: x}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return &Scope{n: n, idx: n.scopeLocked(DefaultScope)}
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
	if x := n.loadScope(name); x != nil {
		return x
	}
	x := newScopeIndex(name)
	n.scopes.Store(name, x)
	n.scopeCount.Add(1)
	return x
}

// observe keeps the index and the watches in step with the replicated
// state; the crdt calls it for every change, with n.mu held.
func (n *Node) observe(c *crdt.Change) {
	n.changes.note(c, n.name)
	var x *scopeIndex
	var v *groupView
	switch last := &n.lastChanged; {
	case last.view != nil && last.view.group == c.Group && !c.GroupCreated:
		x, v = last.scope, last.view
	default:
		x = n.scopeLocked(c.Group.Scope)
		if c.GroupCreated {
			v = &groupView{name: c.Group.Name, group: c.Group}
			x.add(v)
		} else if v = x.stored(c.Group.Name); v == nil {
			panic(fmt.Sprintf("registry: index lost group %q of scope %q", c.Group.Name, c.Group.Scope))
		}
	}
	v.snap.Store(nil)
	if c.GroupRemoved {
		x.remove(c.Group.Name)
		n.lastChanged = lastChanged{}
	} else {
		n.lastChanged = lastChanged{scope: x, view: v}
	}
	n.seq++
	if x.journal != nil {
		n.record(x, c)
	}
}

// lastChanged is the group the previous change touched: the ops of a burst
// into one group find its view with a comparison rather than a lookup of
// its scope and name. It holds the view, hence its crdt.Group, so a group
// created later cannot reuse that address.
type lastChanged struct {
	scope *scopeIndex
	view  *groupView
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

// Close leaves the cluster, if the node is in one (the other nodes drop
// its members at once), and ends every watch and context binding. Changes
// after Close fail with ErrClosed; lookups keep answering from the last
// state.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.stopCluster(true)
	n.mu.Lock()
	defer n.mu.Unlock()
	for b := range n.bindings {
		b.stop()
	}
	clear(n.bindings)
	n.scopes.Range(func(_, v any) bool {
		if x := v.(*scopeIndex); x.journal != nil {
			x.journal.close()
		}
		return true
	})
	n.nodeFeed.close()
	return nil
}

// publish hands an op this node made to replication; n.mu is held. The op
// comes by value and each branch takes its own copy, so that a node on its
// own allocates nothing per change and a clustered one only the op its
// outbox holds.
//
// The caller calls n.cluster.sendQueued once it released n.mu.
func (n *Node) publish(op crdt.Op) {
	if n.cluster != nil {
		n.cluster.queueChangeLocked(&op)
	}
	if n.cfg.onLocalOp != nil {
		seen := op
		n.cfg.onLocalOp(&seen)
	}
}

// refuteLocked answers a claim about this node (a tombstone, or a second
// process under its name) with a new incarnation, announced as one state;
// n.mu is held.
func (n *Node) refuteLocked() {
	if !n.state.NeedsRefute() {
		return
	}
	st := n.state.Refute()
	n.cfg.Logger.Info("registry: refuted a claim about this node", "incarnation", st.Version.Incarnation)
	if n.cluster != nil {
		n.cluster.queueLocked(outgoing{state: &st})
	}
	if n.cfg.onLocalState != nil {
		n.cfg.onLocalState(&st)
	}
}

// Summary returns the fingerprint of this replica's digest: equal on every
// node once the cluster has converged.
func (n *Node) Summary() crdt.Summary {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.Summary()
}
