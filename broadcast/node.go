package broadcast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership"
)

// Transport is what the driver needs from the overlay. *membership.Node
// implements it; tests use an in-memory one.
type Transport interface {
	// Events reports link changes and received payloads; the Node is its
	// only consumer.
	Events() <-chan membership.Event
	// Send hands payload to the active peer named peer. It must not
	// modify payload: one encoding may go to several peers.
	Send(peer string, payload []byte) error
	// Active returns the current active peers.
	Active() []membership.Peer
	// Self returns this node's identity.
	Self() membership.Peer
}

// Options configures a Node.
type Options struct {
	// Config is the protocol configuration; Config.Self defaults to the
	// transport's Self().Name.
	Config plumtree.Config
	// TickInterval is the length of one protocol tick. Default
	// plumtree.DefaultTick.
	TickInterval time.Duration
}

// NodeStats adds the driver's own counters to the protocol's.
type NodeStats struct {
	plumtree.Stats
	SendErrors   uint64 // transport.Send failures (a full link queue, or the link is going down); payloads among them are announced again
	DecodeErrors uint64 // received payloads that were not a valid message
	StepErrors   uint64 // messages the protocol refused (unknown topic)
	OutboxErrors uint64 // outbox messages the protocol refused (unknown topic)
	InlineTurns  uint64 // turns taken by the link reader that received a payload rather than by the Node's goroutine
	CallerDrains uint64 // outboxes taken and sent by the caller of DrainOutboxIfIdle
	Ticks        uint64 // ticks given to the protocol, however many at a time
	TickWakeups  uint64 // times the loop woke for its timer: at every tick while the protocol has work, seldom while it is idle
}

// Outgoing is one message of an application's outbox (see Node.SetOutbox).
type Outgoing struct {
	Topic       string
	ID, Payload []byte
}

// ErrClosed reports a call on a closed Node.
var ErrClosed = errors.New("broadcast: node closed")

// Node runs a Plumtree over a Transport. The protocol runs in turns, one
// at a time: the Node's goroutine reads the transport's events, ticks,
// sends what the protocol emits and calls the handlers; with a transport
// whose link readers can take a turn themselves (*membership.Node), the
// reader that received a payload takes it when no other turn is under way,
// so that the payload reaches its handler without waking another
// goroutine. Handlers therefore run one at a time and must not block, and
// must not call the Node's methods (that would wait on the turn running
// them).
type Node struct {
	tr   Transport
	core *plumtree.Protocol
	tick time.Duration

	reqs      chan func()
	wake      chan struct{} // one pending Wake
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// mu is held for every turn: the loop goroutine's, and a link
	// reader's inline turn (inlineTurn). The fields below are guarded by
	// it.
	mu          sync.Mutex
	poller      eventPoller
	treeWaiters map[uint64]chan plumtree.TreeResult
	stats       NodeStats
	takeOutbox  func() []Outgoing
	moreEvents  bool // the last turn left events in the poller
	// The protocol's ticks go by the clock: ticked of them have been
	// given since epoch (see catchUp); slow is set while the loop's
	// timer waits out the protocol's idle ticks instead of firing at
	// every tick (see pace).
	epoch    time.Time
	ticked   int64
	slow     bool
	wakeTick int64 // the tick the loop's timer is set for
	// tickSoon wakes the loop to tick at every tick again: a turn taken
	// outside it ended the protocol's idleness while its timer was slow.
	tickSoon chan struct{}
}

// Start creates a Node over tr and starts its goroutine. The peers already
// active in tr become the first neighbours.
func Start(tr Transport, opts Options) (*Node, error) {
	cfg := opts.Config
	if cfg.Self == "" {
		cfg.Self = tr.Self().Name
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = plumtree.DefaultTick
	}
	if cfg.Tick <= 0 {
		cfg.Tick = opts.TickInterval
	}
	core, err := plumtree.NewProtocol(cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{
		tr:          tr,
		core:        core,
		tick:        opts.TickInterval,
		reqs:        make(chan func()),
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		treeWaiters: map[uint64]chan plumtree.TreeResult{},
		epoch:       time.Now(),
		tickSoon:    make(chan struct{}, 1),
	}
	go n.run()
	return n, nil
}

// Register sets the handler of topic. Register every topic before
// broadcasting on it, on every node.
func (n *Node) Register(topic string, h plumtree.Handler) error {
	var err error
	if derr := n.do(func() { err = n.core.Register(topic, h) }); derr != nil {
		return derr
	}
	return err
}

// Broadcast sends a message to every node. It is not delivered locally:
// the application holds it already, or its handler is a plumtree.LocalRecorder (as
// a plumtree.SeenSet) and records it. id and payload are copied.
func (n *Node) Broadcast(topic string, id, payload []byte) error {
	id = append([]byte(nil), id...)
	payload = append([]byte(nil), payload...)
	var err error
	if derr := n.do(func() { err = n.core.Broadcast(topic, id, payload) }); derr != nil {
		return derr
	}
	return err
}

// SetOutbox gives the Node an application's queue of messages to
// broadcast. After Wake, the Node's goroutine calls take and broadcasts what
// it returns, in that order, as Broadcast would; take hands the messages
// over (they are not copied). A change the application queues then reaches
// the transport with no goroutine but the Node's between (Broadcast is a
// round trip to that goroutine the caller waits on), and what is queued
// while the goroutine is busy goes out at its next turn, together. take
// runs on the Node's goroutine: like a handler, it must not block nor call
// the Node's methods.
func (n *Node) SetOutbox(take func() []Outgoing) error {
	if err := n.do(func() { n.takeOutbox = take }); err != nil {
		return err
	}
	n.Wake() // what was queued before
	return nil
}

// Wake asks the Node's goroutine to take the outbox. It never blocks, and
// the wakes made before the goroutine gets to one count as one.
func (n *Node) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// DrainOutbox takes the outbox now and returns once its messages are
// handed to the transport.
func (n *Node) DrainOutbox() error {
	return n.do(n.drainOutbox)
}

// DrainOutboxIfIdle takes the outbox and hands its messages to the
// transport in the caller's goroutine, unless a turn is under way (the
// Node's goroutine's, or a link reader's); it reports whether it did. A
// change that comes alone then reaches the transport without waiting for
// the Node's goroutine to be scheduled. It must not be called from a
// handler.
func (n *Node) DrainOutboxIfIdle() bool {
	return n.tryTurn(n.callerDrain)
}

// DrainOutboxAfterTurn is DrainOutboxIfIdle for a caller that must not
// leave the outbox to others: it waits for a turn under way to end, then
// takes the outbox. A turn's holder that is descheduled (a link reader
// merging a payload, on a busy machine) would otherwise let the outbox
// grow without bound while callers keep finding a turn under way. It
// must not be called from a handler, nor with a lock a handler takes.
func (n *Node) DrainOutboxAfterTurn() error {
	if !n.takeTurn(true, n.callerDrain) {
		return ErrClosed
	}
	return nil
}

// callerDrain is the step of a drain in a caller's turn.
func (n *Node) callerDrain() bool {
	n.stats.CallerDrains++
	n.drainOutbox()
	return true
}

// tryTurn takes a turn in the caller's goroutine unless one is under way
// or the Node is closed: it runs step, sends what the protocol emitted,
// and returns step's answer (false when it took no turn).
func (n *Node) tryTurn(step func() bool) bool { return n.takeTurn(false, step) }

// takeTurn is tryTurn, waiting for a turn under way to end if wait says
// so.
func (n *Node) takeTurn(wait bool, step func() bool) bool {
	if wait {
		n.mu.Lock()
	} else if !n.mu.TryLock() {
		return false
	}
	defer n.mu.Unlock()
	select {
	case <-n.stop:
		return false
	default:
	}
	n.catchUp()
	ok := step()
	n.flush()
	if n.slow && n.core.IdleTicks() == 0 {
		select {
		case n.tickSoon <- struct{}{}:
		default:
		}
	}
	return ok
}

// drainOutbox runs in a turn.
func (n *Node) drainOutbox() {
	if n.takeOutbox == nil {
		return
	}
	for _, m := range n.takeOutbox() {
		if err := n.core.Broadcast(m.Topic, m.ID, m.Payload); err != nil {
			n.stats.OutboxErrors++
		}
	}
}

// BroadcastOn broadcasts on the tree of root, which need not be this node
// (see plumtree.Protocol.BroadcastOn). id and payload are copied.
func (n *Node) BroadcastOn(topic, root string, id, payload []byte) error {
	id = append([]byte(nil), id...)
	payload = append([]byte(nil), payload...)
	var err error
	if derr := n.do(func() { err = n.core.BroadcastOn(topic, root, id, payload) }); derr != nil {
		return derr
	}
	return err
}

// StartExchange opens an anti-entropy exchange on topic with the neighbour
// peer now; start, when not nil, is its first message (it is copied),
// otherwise the handler's ExchangeStart is asked.
func (n *Node) StartExchange(topic, peer string, start []byte) error {
	if start != nil {
		start = append([]byte{}, start...)
	}
	var err error
	if derr := n.do(func() { err = n.core.StartExchange(topic, peer, start) }); derr != nil {
		return derr
	}
	return err
}

// CancelExchanges ends every exchange with peer (topic "" = all topics).
func (n *Node) CancelExchanges(topic, peer string) error {
	return n.do(func() { n.core.CancelExchanges(topic, peer) })
}

// BroadcastMembers returns this node's eager and lazy peers in the tree of
// root, as partisan's broadcast_members.
func (n *Node) BroadcastMembers(root string) (eager, lazy []string, err error) {
	err = n.do(func() { eager, lazy = n.core.BroadcastMembers(root) })
	return eager, lazy, err
}

// Peers returns this node's eager and lazy peers in the tree of root.
func (n *Node) Peers(root string) (eager, lazy []string, err error) {
	err = n.do(func() { eager, lazy = n.core.Peers(root) })
	return eager, lazy, err
}

// Roots returns the roots whose trees this node keeps, sorted.
func (n *Node) Roots() ([]string, error) {
	var roots []string
	err := n.do(func() { roots = n.core.Roots() })
	return roots, err
}

// Tree collects the tree of root from the nodes that answer (see
// Plumtree.QueryTree).
func (n *Node) Tree(ctx context.Context, root string) (plumtree.TreeResult, error) {
	ch := make(chan plumtree.TreeResult, 1)
	var id uint64
	var qerr error
	if err := n.do(func() {
		id, qerr = n.core.QueryTree(root)
		if qerr == nil {
			n.treeWaiters[id] = ch
		}
	}); err != nil {
		return plumtree.TreeResult{}, err
	}
	if qerr != nil {
		return plumtree.TreeResult{}, qerr
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		n.do(func() { delete(n.treeWaiters, id) })
		return plumtree.TreeResult{}, fmt.Errorf("broadcast: tree of %s: %w", root, ctx.Err())
	case <-n.done:
		return plumtree.TreeResult{}, ErrClosed
	}
}

// Exchanges returns the anti-entropy exchanges in progress.
func (n *Node) Exchanges() ([]plumtree.Exchange, error) {
	var xs []plumtree.Exchange
	err := n.do(func() { xs = n.core.Exchanges() })
	return xs, err
}

// Stats returns the protocol's and the driver's counters.
func (n *Node) Stats() (NodeStats, error) {
	var s NodeStats
	err := n.do(func() {
		s = n.stats
		s.Stats = n.core.Stats()
	})
	return s, err
}

// Close stops the goroutine. It does not close the transport.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { close(n.stop) })
	<-n.done
	return nil
}

// do runs f on the loop goroutine and waits for it.
func (n *Node) do(f func()) error {
	finished := make(chan struct{})
	select {
	case n.reqs <- func() { f(); close(finished) }:
	case <-n.done:
		return ErrClosed
	}
	<-finished
	return nil
}

func (n *Node) run() {
	defer close(n.done)
	timer := time.NewTimer(n.tick)
	defer timer.Stop()
	n.mu.Lock()
	n.catchUp()
	for _, peer := range n.tr.Active() {
		n.core.NeighborUp(peer.Name)
	}
	n.flush()
	// A transport that lets the loop take its events itself saves a
	// goroutine hand-off per received message, and one that lets its
	// readers take a turn saves the hand-off to the loop too.
	var events <-chan membership.Event
	var waiting <-chan struct{}
	poller, polling := n.tr.(eventPoller)
	if polling {
		n.poller = poller
		waiting = poller.EventsWaiting()
		n.takeEvents(poller) // choose polling before any event is queued
		if inline, ok := n.tr.(inlineConsumer); ok {
			inline.ConsumeInline(n.inlineTurn)
			defer inline.ConsumeInline(nil)
		}
	} else {
		events = n.tr.Events()
	}
	n.mu.Unlock()
	for {
		n.mu.Lock()
		waitingNow := waiting
		if polling && n.moreEvents {
			waitingNow = alreadySignalled
		}
		n.mu.Unlock()
		select {
		case <-n.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // the transport is closed; serve calls until Close
				continue
			}
			n.mu.Lock()
			n.catchUp()
			n.handle(ev)
		case <-waitingNow:
			n.mu.Lock()
			n.catchUp()
			n.takeEvents(poller)
		case <-timer.C:
			n.mu.Lock()
			n.stats.TickWakeups++
			n.wakeTick = 0 // fired: set it again
			n.catchUp()
		case <-n.tickSoon:
			n.mu.Lock()
			n.catchUp()
		case f := <-n.reqs:
			n.mu.Lock()
			n.catchUp()
			f()
		case <-n.wake:
			n.mu.Lock()
			n.catchUp()
			n.drainOutbox()
		}
		n.flush()
		n.pace(timer)
		n.mu.Unlock()
	}
}

// maxIdleWait bounds the ticks the loop's timer waits while the protocol
// is idle: past it, the loop ticks anyway.
const maxIdleWait = 100

// maxCatchUp bounds the ticks one turn gives the protocol (see catchUp).
const maxCatchUp = 10 * maxIdleWait

// catchUp gives the protocol the ticks the clock says have passed since
// the last it was given. Every turn starts with it, so the protocol's
// time is the clock's whichever goroutine takes the turn and however
// seldom the loop's timer fires. A turn that finds more than maxCatchUp
// ticks due (the process was stopped) gives that many and drops the rest,
// as a ticker drops the ticks its reader missed.
func (n *Node) catchUp() {
	due := int64(time.Since(n.epoch)/n.tick) - n.ticked
	if due <= 0 {
		return
	}
	n.ticked += due
	given := min(due, maxCatchUp)
	for range given {
		n.core.Tick()
	}
	n.stats.Ticks += uint64(given)
}

// pace sets the loop's timer for the protocol's next tick that has work:
// the next tick when it has some, else the tick after its idle ones (at
// most maxIdleWait away). An idle node then wakes about once a second at
// the default tick instead of a hundred times, and does the same work:
// the ticks it sleeps through do nothing, and catchUp gives them all the
// same.
func (n *Node) pace(timer *time.Timer) {
	idle := min(n.core.IdleTicks(), maxIdleWait)
	n.slow = idle > 0
	at := n.ticked + idle + 1
	if at == n.wakeTick {
		return
	}
	n.wakeTick = at
	timer.Reset(time.Until(n.epoch.Add(time.Duration(at) * n.tick)))
}

// inlineConsumer is a Transport whose link readers can hand their
// payloads to the protocol themselves, as *membership.Node's can
// (ConsumeInline).
type inlineConsumer interface {
	ConsumeInline(turn func() bool)
}

// inlineTurn takes the events waiting, in the goroutine of the link
// reader that just queued one, unless a turn is under way (the loop's, or
// another reader's): that turn, or the loop woken after it, takes them.
// It reports whether it left nothing for the loop.
func (n *Node) inlineTurn() bool {
	return n.tryTurn(func() bool {
		n.stats.InlineTurns++
		n.takeEvents(n.poller)
		return !n.moreEvents
	})
}

// eventPoller is a Transport whose events the loop can take itself, as
// *membership.Node's: EventsWaiting signals that NextEvent has some.
type eventPoller interface {
	NextEvent() (membership.Event, bool)
	EventsWaiting() <-chan struct{}
}

// manySender is a transport that frames one payload once for several
// peers (membership.Node.SendMany); others get a Send per peer.
type manySender interface {
	SendMany(peers []string, payload []byte) []error
}

// sendCopies sends envelopes that carry the same message to different
// peers, encoded once: a root's copies of a batch are one encoding, and
// one frame where the transport allows, not one of each per peer.
func (n *Node) sendCopies(envs []plumtree.Envelope) {
	payload := plumtree.AppendMessage(nil, envs[0].Msg)
	ms, ok := n.tr.(manySender)
	if !ok || len(envs) == 1 {
		for _, env := range envs {
			if err := n.tr.Send(env.To, payload); err != nil {
				n.undelivered(env)
			}
		}
		return
	}
	peers := make([]string, len(envs))
	for i, env := range envs {
		peers[i] = env.To
	}
	for i, err := range ms.SendMany(peers, payload) {
		if err != nil {
			n.undelivered(envs[i])
		}
	}
}

func (n *Node) undelivered(env plumtree.Envelope) {
	n.stats.SendErrors++
	// A full queue must not lose a payload: the core announces it to that
	// peer instead, at the next lazy flush.
	n.core.Undelivered(env.To, env.Msg)
}

// sameCopy reports whether b is a's payload on its way to another peer:
// the copies push makes of one gossip, which encode alike.
func sameCopy(a, b plumtree.Message) bool {
	return a.Type == plumtree.MsgGossip && b.Type == plumtree.MsgGossip &&
		a.Round == b.Round && a.Root == b.Root && a.Topic == b.Topic &&
		bytes.Equal(a.ID, b.ID) && sameBytes(a.Payload, b.Payload) &&
		slices.Equal(a.Siblings, b.Siblings)
}

// sameBytes reports whether a and b are the same bytes in memory, which
// for the copies of one push they are; equal contents elsewhere are not
// worth comparing.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// eventsPerTurn bounds the events one turn of the loop takes, so that
// ticks, calls and the outbox are served during a flood.
const eventsPerTurn = 64

// alreadySignalled is a channel that is always ready: the loop waits on it
// instead of the poller's signal when a turn left events waiting.
var alreadySignalled = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// takeEvents handles the events the poller holds, up to eventsPerTurn.
func (n *Node) takeEvents(p eventPoller) {
	for range eventsPerTurn {
		ev, ok := p.NextEvent()
		if !ok {
			n.moreEvents = false
			return
		}
		n.handle(ev)
	}
	n.moreEvents = true
}

func (n *Node) handle(ev membership.Event) {
	switch ev.Type {
	case membership.LinkUp:
		if ev.Reset {
			n.core.NeighborReset(ev.Peer.Name)
		} else {
			n.core.NeighborUp(ev.Peer.Name)
		}
	case membership.LinkDown:
		n.core.NeighborDown(ev.Peer.Name)
	case membership.Message:
		m, err := plumtree.DecodeMessage(ev.Payload)
		if err != nil {
			n.stats.DecodeErrors++
			return
		}
		if err := n.core.Step(ev.Peer.Name, m); err != nil {
			n.stats.StepErrors++
		}
	}
}

func (n *Node) flush() {
	if !n.core.HasReady() {
		return
	}
	rd := n.core.Ready()
	for msgs := rd.Messages; len(msgs) > 0; {
		copies := 1
		for copies < len(msgs) && sameCopy(msgs[0].Msg, msgs[copies].Msg) {
			copies++
		}
		n.sendCopies(msgs[:copies])
		msgs = msgs[copies:]
	}
	for _, res := range rd.Trees {
		if ch, ok := n.treeWaiters[res.Query]; ok {
			delete(n.treeWaiters, res.Query)
			ch <- res
		}
	}
}
