package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry/replication"
)

// ClusterConfig makes a Node a member of a cluster: it runs memberlist,
// HyParView and Plumtree beside its registry and replicates every scope.
type ClusterConfig struct {
	// Bind is the overlay's TCP listen address (default 127.0.0.1:0).
	Bind string
	// Advertise is the overlay address other nodes dial (default: the
	// bound address).
	Advertise string
	// Gossip is memberlist's bind address (default 127.0.0.1:0).
	Gossip string
	// Join lists memberlist addresses of running nodes. Empty: this node
	// starts a cluster of its own, which others join through it.
	Join []string
	// JoinTimeout bounds the join at start (default 10 s).
	JoinTimeout time.Duration
	// Key authenticates every overlay connection and encrypts memberlist:
	// 16, 24 or 32 bytes. Empty: an open cluster.
	Key []byte
	// Label separates clusters that share a network (default "cpg").
	Label string
	// HTTPAddr is advertised to the other nodes (cpgd's API address).
	HTTPAddr string

	// Membership tunes the overlay and the failure detector; its name,
	// address, key, label and incarnation fields are set from the above.
	Membership membership.NodeConfig
	// Broadcast tunes Plumtree.
	Broadcast broadcast.Options
	// Replication tunes the replication core.
	Replication replication.Config

	// ReapAfter is how long an owner may hold entries here while the
	// failure detector lists it as neither alive nor suspect before its
	// entries go (default 30 s, and at least two of the failure
	// detector's full-state exchanges: 60 s with the LAN timings). It is
	// the rule that keeps a late message from bringing back a node whose
	// death this replica missed or whose tombstone it collected.
	ReapAfter time.Duration
	// TombstoneGrace is how long a tombstone is kept (default 10 min).
	TombstoneGrace time.Duration

	// WrapTransport, if set, wraps the overlay as the broadcast layer sees
	// it: tests inject message loss, delay and duplication there.
	WrapTransport func(broadcast.Transport) broadcast.Transport
}

// cluster is what a clustered Node runs beside its registry.
type cluster struct {
	cfg     ClusterConfig
	log     *slog.Logger
	overlay *membership.Node
	bcast   *broadcast.Node
	rep     *replication.Replica

	// queueMu guards the local changes not yet broadcast. ops holds the
	// ops in order, outbox the rarer other changes, each with the number
	// of ops queued before it: together they keep the order the changes
	// were made in. Changes are queued with the node's mu held too, so
	// in the order they were made; they are taken under queueMu alone,
	// so that taking them never waits for the node's mu, which a burst
	// of joins holds nearly all the time.
	queueMu sync.Mutex
	ops     []crdt.Op
	outbox  []outgoing
	// spareOps and spareOutbox are the buffers the last take emptied,
	// which the next take gives the queue, so that a stream of changes
	// is queued without an allocation each. Only takeOutbox touches
	// them, and the broadcast's turns, which call it, run one at a time.
	spareOps    []crdt.Op
	spareOutbox []outgoing

	// Guarded by the node's mu.
	gone   map[string]bool      // owners the failure detector declared dead or left
	absent map[string]time.Time // owners with entries, not listed alive, since when
	// advertised is the incarnation memberlist's metadata carries.
	advertised uint64

	// lastTake is when the outbox was last taken (Unix nanoseconds);
	// callerSends is set when a change was queued for its caller to send
	// (sendQueued): a lone one, or the last of a burst's share;
	// callerWaits when the queue holds two shares.
	lastTake    atomic.Int64
	callerSends atomic.Bool
	callerWaits atomic.Bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// outgoing is a local change other than an op waiting for the
// broadcast: this node's whole state after a refute, or a tombstone it
// found. opsBefore is how many of the queued ops were made before it.
type outgoing struct {
	opsBefore int
	state     *crdt.OwnerState
	death     *replication.Batch
}

const (
	defaultJoinTimeout    = 10 * time.Second
	defaultReapAfter      = 30 * time.Second
	defaultTombstoneGrace = 10 * time.Minute
	// reapEvery spaces the reaper's checks.
	reapEvery = time.Second
	// maxBatchBytes keeps a batch well inside one frame.
	maxBatchBytes = plumtree.MaxPayloadLen / 2
)

// defaultReapAfterFor is ReapAfter's default for a failure detector
// tuned by g: 30 s, and at least two of its full-state exchanges. A node's
// arrival is announced by gossip, and a node that missed the announcement
// learns of it only at its next full-state exchange (every 30 s with the
// LAN timings); meanwhile the newcomer's entries reach it by the broadcast
// and its failure detector does not list the newcomer at all. Reaping
// after 30 s then raced that exchange and could tombstone the entries of a
// live node. Two exchanges leave room for one that goes to a node which
// missed the announcement too.
func defaultReapAfterFor(g membership.GossipConfig) time.Duration {
	exchange := g.PushPullInterval
	if exchange <= 0 {
		exchange = membership.DefaultGossipConfig().PushPullInterval
	}
	return max(defaultReapAfter, 2*exchange)
}

// startCluster joins n to its cluster; n.mu is not held.
func (n *Node) startCluster(cc ClusterConfig) error {
	if cc.JoinTimeout <= 0 {
		cc.JoinTimeout = defaultJoinTimeout
	}
	if cc.ReapAfter <= 0 {
		cc.ReapAfter = defaultReapAfterFor(cc.Membership.Gossip)
	}
	if cc.TombstoneGrace <= 0 {
		cc.TombstoneGrace = defaultTombstoneGrace
	}
	c := &cluster{
		cfg:    cc,
		log:    n.cfg.Logger,
		gone:   make(map[string]bool),
		absent: make(map[string]time.Time),
		stop:   make(chan struct{}),
	}
	mc := cc.Membership
	mc.Name = n.name
	mc.BindAddr, mc.AdvertiseAddr, mc.GossipAddr = cc.Bind, cc.Advertise, cc.Gossip
	mc.HTTPAddr, mc.ClusterKey, mc.ClusterLabel = cc.HTTPAddr, cc.Key, cc.Label
	mc.Incarnation = n.cfg.Incarnation
	c.advertised = n.cfg.Incarnation
	overlay, err := membership.Start(mc)
	if err != nil {
		return fmt.Errorf("registry: start the overlay: %w", err)
	}
	var tr broadcast.Transport = overlay
	if cc.WrapTransport != nil {
		tr = cc.WrapTransport(overlay)
	}
	bcast, err := broadcast.Start(tr, cc.Broadcast)
	if err != nil {
		overlay.Close()
		return fmt.Errorf("registry: start the broadcast: %w", err)
	}
	c.overlay, c.bcast = overlay, bcast
	n.mu.Lock()
	repCfg := cc.Replication
	if repCfg.Tick <= 0 {
		repCfg.Tick = c.tick()
	}
	c.rep = replication.New(n.state, repCfg)
	n.cluster = c
	n.mu.Unlock()
	if err := bcast.Register(replication.Topic, lockedReplica{n}); err != nil {
		c.shutdown(false)
		return err
	}
	if err := bcast.SetOutbox(func() []broadcast.Outgoing { return n.takeOutbox(c) }); err != nil {
		c.shutdown(false)
		return err
	}
	c.wg.Add(1)
	go n.watchStatuses(c)
	if len(cc.Join) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), cc.JoinTimeout)
		defer cancel()
		if err := overlay.Join(ctx, cc.Join...); err != nil {
			n.stopCluster(false)
			return fmt.Errorf("registry: join %v: %w", cc.Join, err)
		}
	}
	return nil
}

// queueLocked puts a local change in the outbox and wakes the broadcast's
// goroutine, which takes the outbox itself (takeOutbox): a change reaches
// the network with no goroutine of ours between, and changes made while
// that goroutine is busy go out together at its next turn, so a burst
// travels as a few batches rather than one broadcast per change. n.mu is
// held.
func (c *cluster) queueLocked(o outgoing) {
	c.queueMu.Lock()
	o.opsBefore = len(c.ops)
	c.outbox = append(c.outbox, o)
	c.queueMu.Unlock()
	c.bcast.Wake()
}

// loneQuiet is how long the outbox must have gone untaken for a change to
// count as lone: a burst's changes come far closer together, a paced
// stream's (500 a second) farther apart.
const loneQuiet = time.Millisecond

// burstShare is how many queued ops make the caller of the change that
// queued the last of them send them itself, if the broadcast's goroutine
// has not taken them: a batch of a burst leaves while the burst is made.
// Woken, that goroutine is often not scheduled before the joining
// goroutine is done (with five processes on two cores, a 2,000-join
// burst was taken in one piece in most trials), so the other nodes idled
// through the burst and then had all of it to apply at once. A share is
// large enough that a burst still travels as a few batches. With twice
// that queued, a turn under way (whose holder may itself be waiting for a
// CPU) is waited for rather than left to: the queue stays bounded.
const burstShare = 256

// queueChangeLocked is queueLocked for an op made by a user's call,
// whose caller calls sendQueued once n.mu is released. A lone change (the
// outbox was empty and untaken for loneQuiet) wakes no goroutine: its
// caller sends it itself, which spares it the wait for the broadcast's
// goroutine to be scheduled (on a loaded machine, 100 µs and more at the
// 99th percentile). Changes that follow it within loneQuiet, as a burst's
// do, are left to that goroutine, which sends what accumulated together,
// except that a caller whose change leaves burstShare ops or more queued
// sends them itself.
func (c *cluster) queueChangeLocked(op *crdt.Op) {
	c.queueMu.Lock()
	c.ops = append(c.ops, *op)
	queued := len(c.ops)
	lone := queued == 1 && len(c.outbox) == 0 && time.Now().UnixNano()-c.lastTake.Load() >= int64(loneQuiet)
	c.queueMu.Unlock()
	switch {
	case queued >= 2*burstShare:
		c.callerWaits.Store(true)
	case lone || queued >= burstShare:
		c.callerSends.Store(true)
	}
	if !lone {
		c.bcast.Wake()
	}
}

// sendQueued sends the changes queued by queueChangeLocked when it left
// them to the caller: in the caller's goroutine unless a turn of the
// broadcast is under way (it is then woken to send them), or after that
// turn when the queue has grown past two shares. n.mu must not be held.
// A nil cluster (a node on its own) has nothing to send.
func (c *cluster) sendQueued() {
	switch {
	case c == nil:
	case c.callerWaits.CompareAndSwap(true, false):
		c.callerSends.Store(false)
		_ = c.bcast.DrainOutboxAfterTurn() // only a closed broadcast refuses, and Close drains the rest
	case c.callerSends.CompareAndSwap(true, false):
		if !c.bcast.DrainOutboxIfIdle() {
			c.bcast.Wake()
		}
	}
}

// takeOutbox hands the broadcast the local changes queued since its last
// turn, as batches, in order; only the broadcast's turns call it, one at
// a time, so batches leave in the order their changes were made. It takes
// the queue's lock only, never the node's, and holds it for no encoding.
func (n *Node) takeOutbox(c *cluster) []broadcast.Outgoing {
	c.queueMu.Lock()
	ops, out := c.ops, c.outbox
	c.ops, c.outbox = c.spareOps, c.spareOutbox
	c.lastTake.Store(time.Now().UnixNano())
	c.queueMu.Unlock()
	var msgs []broadcast.Outgoing
	add := func(batches ...replication.Batch) {
		for _, b := range batches {
			msgs = append(msgs, broadcast.Outgoing{Topic: replication.Topic, ID: b.ID, Payload: b.Payload})
		}
	}
	sent := 0
	sendOps := func(upTo int) {
		if upTo > sent {
			add(replication.Batches(ops[sent:upTo], maxBatchBytes)...)
			sent = upTo
		}
	}
	for _, o := range out {
		sendOps(o.opsBefore)
		if o.state != nil {
			add(replication.Batch{
				ID:      replication.MessageID(o.state.Owner, o.state.Version),
				Payload: replication.StatePayload(o.state),
			})
		} else {
			add(*o.death)
		}
	}
	sendOps(len(ops))
	// The batches hold encodings of their own: the buffers go back for
	// the next take, emptied so that they keep no member's strings alive,
	// unless a burst made them larger than is worth keeping.
	clear(ops)
	clear(out)
	if cap(ops) > maxSpareOps {
		ops = nil
	}
	c.spareOps, c.spareOutbox = ops[:0], out[:0]
	return msgs
}

// maxSpareOps bounds the op buffer a take keeps for the next one.
const maxSpareOps = 4096

// watchStatuses purges the owners the failure detector declares dead or
// left (with the incarnation their metadata advertised), and reaps the
// entries of owners it has not listed alive for ReapAfter.
func (n *Node) watchStatuses(c *cluster) {
	defer c.wg.Done()
	reap := time.NewTicker(reapEvery)
	defer reap.Stop()
	for {
		select {
		case <-c.stop:
			return
		case ev, ok := <-c.overlay.Statuses():
			if !ok {
				return
			}
			n.noteStatus(c, ev)
			if ev.RTT == 0 {
				ev.RTT, _ = c.overlay.RTT(ev.Name)
			}
			n.nodeFeed.publish(nodeEventOf(ev))
			if ev.Status == membership.StatusAlive && (ev.Previous == membership.StatusDead || ev.Previous == membership.StatusLeft) {
				// A node came back: what either side holds of the other
				// may have been refused or purged meanwhile. Compare
				// digests now rather than at the next exchange period.
				c.exchangeWithNeighbours()
			}
		case <-reap.C:
			n.reap(c)
		}
	}
}

func (n *Node) noteStatus(c *cluster, ev membership.StatusEvent) {
	if ev.Name == n.name {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev.Status {
	case membership.StatusAlive, membership.StatusSuspect:
		delete(c.gone, ev.Name)
		delete(c.absent, ev.Name)
	case membership.StatusDead, membership.StatusLeft:
		c.gone[ev.Name] = true
		inc := ev.Incarnation
		if inc == 0 {
			// Metadata never reached us: the incarnation we hold is the
			// best we know.
			v, _ := n.state.Owner(ev.Name)
			inc = v.Incarnation
		}
		if ev.Certain {
			// This node saw the process go: tell everyone now rather than
			// let each wait for its own failure detector.
			if id, payload, ok := c.rep.Purge(ev.Name, inc); ok {
				c.queueLocked(outgoing{death: &replication.Batch{ID: id, Payload: payload}})
			}
		} else {
			n.state.Tombstone(ev.Name, inc, c.rep.Now())
		}
	}
}

// reap removes the entries of owners that are not cluster members (their
// death was missed, or their tombstone collected before a late message
// brought them back), and collects old tombstones.
func (n *Node) reap(c *cluster) {
	alive := make(map[string]bool)
	for _, m := range c.overlay.Members() {
		if m.Status == membership.StatusAlive || m.Status == membership.StatusSuspect {
			alive[m.Name] = true
		}
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, owner := range n.state.Owners() {
		if owner == n.name || alive[owner] {
			delete(c.absent, owner)
			continue
		}
		since, ok := c.absent[owner]
		if !ok {
			c.absent[owner] = now
			continue
		}
		if now.Sub(since) >= c.cfg.ReapAfter {
			v, _ := n.state.Owner(owner)
			n.state.Tombstone(owner, v.Incarnation, c.rep.Now())
			delete(c.absent, owner)
		}
	}
	ticks := int64(c.cfg.TombstoneGrace / c.tick())
	if before := c.rep.Now() - ticks; before > 0 {
		n.state.CollectTombstones(before)
	}
}

// exchangeWithNeighbours opens an anti-entropy exchange with every active
// overlay neighbour.
func (c *cluster) exchangeWithNeighbours() {
	for _, p := range c.overlay.Active() {
		// A peer that left the active view meanwhile is no loss: the link
		// that replaces it opens an exchange of its own.
		_ = c.bcast.StartExchange(replication.Topic, p.Name, nil)
	}
}

// stopCluster leaves the cluster. A graceful leave first tells every node
// that this process is gone (a tombstone of its own incarnation, so its
// members vanish everywhere at once), then leaves memberlist.
func (n *Node) stopCluster(graceful bool) {
	n.mu.Lock()
	c := n.cluster
	if c == nil {
		n.mu.Unlock()
		return
	}
	if graceful {
		_, v := n.state.Self()
		c.queueLocked(outgoing{death: &replication.Batch{
			ID: replication.DeathID(n.name, v.Incarnation), Payload: replication.DeathPayload(n.name, v.Incarnation),
		}})
	}
	n.mu.Unlock()
	c.shutdown(graceful)
}

func (c *cluster) shutdown(graceful bool) {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.wg.Wait()
	// What is still queued goes out, the leave among it.
	if err := c.bcast.DrainOutbox(); err != nil && !errors.Is(err, broadcast.ErrClosed) {
		c.log.Warn("registry: broadcast", "err", err)
	}
	if graceful {
		// Let the tombstone leave this node before its links close.
		time.Sleep(max(2*c.tick(), leaveFlushTime))
	}
	c.bcast.Close()
	c.overlay.Close()
}

// leaveFlushTime is how long a graceful leave waits, after its tombstone
// went to the links' writers, before it closes them.
const leaveFlushTime = 200 * time.Millisecond

// tick is the broadcast's tick: the replica's unit of time.
func (c *cluster) tick() time.Duration {
	if c.cfg.Broadcast.TickInterval > 0 {
		return c.cfg.Broadcast.TickInterval
	}
	return plumtree.DefaultTick
}

// lockedReplica is the replication core as the broadcast's handler: the
// broadcast calls it one turn at a time (from its goroutine, or from the
// link reader that received a payload), and the registry's lock guards
// the state it shares with the node's users.
type lockedReplica struct{ n *Node }

func (h lockedReplica) Merge(from string, id, payload []byte) (plumtree.Verdict, []plumtree.Action) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	h.n.holdRecords()
	defer h.n.releaseRecords() // before the unlock, even if Merge panics
	verdict, acts := h.n.cluster.rep.Merge(from, id, payload)
	h.n.advertiseLocked()
	return verdict, acts
}

func (h lockedReplica) IsStale(id []byte) bool {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.n.cluster.rep.IsStale(id)
}

func (h lockedReplica) Graft(id []byte) ([]byte, bool) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.n.cluster.rep.Graft(id)
}

func (h lockedReplica) ExchangeStart(peer string) []byte {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.n.cluster.rep.ExchangeStart(peer)
}

func (h lockedReplica) ExchangeReceive(x plumtree.Exchange, data []byte) ([]byte, []plumtree.Action) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	reply, acts := h.n.cluster.rep.ExchangeReceive(x, data)
	h.n.advertiseLocked()
	return reply, acts
}

// advertiseLocked keeps the incarnation memberlist's metadata advertises
// at this node's own, which a refute (the replication core's or
// refuteLocked's) moves forward: a verdict on this process names the
// advertised one, and one it has left behind would purge none of its
// members. n.mu is held.
func (n *Node) advertiseLocked() {
	if n.cluster == nil {
		return
	}
	// Every merge calls this: compare here, so that only a refute reaches
	// memberlist's lock.
	if _, v := n.state.Self(); v.Incarnation != n.cluster.advertised {
		n.cluster.advertised = v.Incarnation
		n.cluster.overlay.SetIncarnation(v.Incarnation)
	}
}

func (h lockedReplica) Tick() []plumtree.Action {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.n.cluster.rep.Tick()
}

// IdleTicks is asked after the broadcast's turns, and a node's users hold
// its lock for every change: rather than wait for it, a busy lock counts
// as work to do (the broadcast then ticks at every tick for a while).
func (h lockedReplica) IdleTicks() int64 {
	if !h.n.mu.TryLock() {
		return 0
	}
	defer h.n.mu.Unlock()
	return h.n.cluster.rep.IdleTicks()
}

// GossipAddr returns the address of this node's failure detector
// (memberlist), which other nodes give as ClusterConfig.Join; "" for a node
// on its own.
func (n *Node) GossipAddr() string {
	if n.cluster == nil {
		return ""
	}
	return n.cluster.overlay.GossipAddr()
}

// Nodes returns the cluster's nodes as this node knows them (nil for a
// node on its own).
func (n *Node) Nodes() []membership.NodeInfo {
	if n.cluster == nil {
		return nil
	}
	return n.cluster.overlay.Members()
}

// Overlay describes this node's place in the overlay.
type Overlay struct {
	// Active are the peers this node holds links to; Passive the ones it
	// would replace a lost link with.
	Active, Passive []membership.Peer
	// Eager and Lazy split the active peers for the broadcast tree rooted
	// at this node, the one its own operations travel down: eager peers get
	// each operation, lazy ones only its announcement.
	Eager, Lazy []string
}

// Overlay returns this node's views and the eager and lazy peers of its
// own broadcast tree (empty for a node on its own).
func (n *Node) Overlay() Overlay {
	if n.cluster == nil {
		return Overlay{}
	}
	o := Overlay{Active: n.cluster.overlay.Active(), Passive: n.cluster.overlay.Passive()}
	// Before this node's first broadcast its tree is the one every new tree
	// starts from.
	eager, lazy, err := n.cluster.bcast.Peers(n.name)
	if err == nil {
		o.Eager, o.Lazy = eager, lazy
	}
	return o
}
