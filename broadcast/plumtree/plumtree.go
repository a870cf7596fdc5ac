package plumtree

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Protocol is the Plumtree protocol state of one node. It is not safe for concurrent
// use; it starts no goroutine and reads no clock. Feed it overlay changes
// (NeighborUp, NeighborDown), received messages (Step), local broadcasts
// (Broadcast) and the passing of time (Tick); after each call, take the
// messages to send from Ready. Deliveries happen by calling the topic's
// Handler during Step.
type Protocol struct {
	cfg  Config
	self string
	now  int64

	handlers map[string]Handler
	topics   []string // sorted, so handler calls happen in a fixed order

	neighbors []string // sorted
	trees     *treeSet

	missing    map[msgKey]*missingEntry
	recent     map[msgKey]*recentEntry
	recentFIFO []recentRef
	recentSize int // payload bytes held in recent
	lazyQueues map[string][]Announcement

	exchanges      map[exchangeKey]*Exchange
	nextExchangeID uint64
	nextExchange   int64 // tick of the next periodic exchange

	queries     map[queryKey]*treeQuery
	doneQueries map[queryKey]int64
	nextQueryID uint64

	out     []Envelope
	results []TreeResult
	stats   Stats
}

type msgKey struct{ topic, id string }

// missingEntry is a payload announced to us that we lack.
type missingEntry struct {
	topic      string
	id         []byte
	root       string
	created    int64
	deadline   int64 // tick at which to graft; 0 when no timer runs
	announcers []announcer
	grafts     int    // grafts sent for it so far
	bestRound  uint32 // smallest announced round, for the optimisation
	bestPeer   string
}

type announcer struct {
	peer  string
	round uint32
}

// recentEntry remembers a delivery for a while: the eager round and sender
// (for the optimisation) and, budget permitting, the payload (for grafts).
type recentEntry struct {
	root    string
	round   uint32
	from    string // "" for our own broadcasts
	payload []byte
	at      int64
}

type recentRef struct {
	key msgKey
	at  int64
}

// Ready is what the caller must act on after feeding the Plumtree.
type Ready struct {
	// Messages to send, each to one neighbour, in order.
	Messages []Envelope
	// Trees holds the answers to finished tree queries.
	Trees []TreeResult
}

// ErrNoHandler reports a broadcast on a topic without a registered handler.
var ErrNoHandler = errors.New("plumtree: no handler for topic")

// NewProtocol returns a Plumtree with no neighbours and no handlers. (New is
// the Verdict.)
func NewProtocol(cfg Config) (*Protocol, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Protocol{
		cfg:         cfg,
		self:        cfg.Self,
		handlers:    map[string]Handler{},
		trees:       newTreeSet(cfg.MaxTrees),
		missing:     map[msgKey]*missingEntry{},
		recent:      map[msgKey]*recentEntry{},
		lazyQueues:  map[string][]Announcement{},
		exchanges:   map[exchangeKey]*Exchange{},
		queries:     map[queryKey]*treeQuery{},
		doneQueries: map[queryKey]int64{},
	}
	// Nodes started together must not exchange in step: each picks its
	// own phase within the first period.
	p.nextExchange = 1 + int64(cfg.Rand.IntN(cfg.ExchangeTicks))
	return p, nil
}

// Register sets the handler of topic, replacing any earlier one. Every node
// must register the same topics: a message for a topic without a handler is
// dropped (and counted). A new topic is reconciled at once with the current
// neighbours, as a new link would be.
func (p *Protocol) Register(topic string, h Handler) error {
	if topic == "" || len(topic) > MaxTopicLen {
		return fmt.Errorf("plumtree: topic %q: length must be 1..%d", topic, MaxTopicLen)
	}
	if h == nil {
		return fmt.Errorf("plumtree: topic %q: nil handler", topic)
	}
	_, known := p.handlers[topic]
	p.handlers[topic] = h
	if known {
		return nil
	}
	i, _ := slices.BinarySearch(p.topics, topic)
	p.topics = slices.Insert(p.topics, i, topic)
	// Only this end knows of the new topic, so it opens, whatever the
	// names (unlike a new link, see NeighborUp).
	for _, peer := range p.neighbors {
		p.startExchange(peer, topic)
	}
	return nil
}

// Self returns this node's name.
func (p *Protocol) Self() string { return p.self }

// Now returns the number of ticks so far.
func (p *Protocol) Now() int64 { return p.now }

// Neighbors returns the current neighbours, sorted.
func (p *Protocol) Neighbors() []string { return slices.Clone(p.neighbors) }

// HasReady reports whether Ready would return anything.
func (p *Protocol) HasReady() bool { return len(p.out) > 0 || len(p.results) > 0 }

// Ready returns and clears the pending output.
func (p *Protocol) Ready() Ready {
	rd := Ready{Messages: p.out, Trees: p.results}
	p.out, p.results = nil, nil
	return rd
}

// NeighborUp reports a new overlay link. The peer joins the eager set of
// every tree still all-eager (the paper's NeighborUp) and the lazy set of
// every pruned one (see treeSet.neighborUp), and anti-entropy runs with it at
// once, for every topic: this is the full-state merge on (re)connect. Both
// ends hear of the link, so only one opens that exchange: the end whose
// name sorts lower. One exchange moves each side's missing state once.
func (p *Protocol) NeighborUp(peer string) {
	if peer == "" || peer == p.self || p.isNeighbor(peer) {
		return
	}
	i, _ := slices.BinarySearch(p.neighbors, peer)
	p.neighbors = slices.Insert(p.neighbors, i, peer)
	p.trees.neighborUp(peer)
	if p.self < peer {
		p.startExchanges(peer)
	}
}

// NeighborReset reports a link to peer that replaced another one to it
// whose frames in flight may be lost (a stalled connection superseded by a
// fresh one, or a failed one another took over). Either end may have
// dropped what the other sent, and only the end that dropped it knows; the
// two may not even agree that a reset happened. So this end compares state
// with the peer at once, whatever the names' order: a reset told to the
// higher name alone (the lower name had moved to a new connection without
// one) left the gap to the periodic exchange. When both ends hear of it, two exchanges run, and each
// moves only what is missing.
func (p *Protocol) NeighborReset(peer string) {
	if peer == "" || peer == p.self {
		return
	}
	if !p.isNeighbor(peer) {
		p.NeighborUp(peer)
		if p.self < peer {
			return // NeighborUp opened it
		}
	}
	p.startExchanges(peer)
}

// NeighborDown reports a lost overlay link. The peer leaves every tree, its
// queued announcements are dropped, payloads we were waiting for from it
// will be grafted from the next announcer, and the exchanges this node
// opened with it are forgotten (a NeighborUp opens a fresh one). Those the
// peer opened are its to end or to let time out: a peer that replaced a
// stalled link opens one over the new link at once, and this end may hear
// of the old link's end only after that exchange began.
func (p *Protocol) NeighborDown(peer string) {
	i, ok := slices.BinarySearch(p.neighbors, peer)
	if !ok {
		return
	}
	p.neighbors = slices.Delete(p.neighbors, i, i+1)
	p.trees.neighborDown(peer)
	delete(p.lazyQueues, peer)
	for _, e := range p.missing {
		e.announcers = slices.DeleteFunc(e.announcers, func(a announcer) bool { return a.peer == peer })
		if e.bestPeer == peer {
			e.bestPeer, e.bestRound = "", 0
		}
	}
	for k := range p.exchanges {
		if k.peer == peer && k.mine {
			delete(p.exchanges, k)
		}
	}
	p.neighborDownQueries(peer)
}

func (p *Protocol) isNeighbor(peer string) bool {
	_, ok := slices.BinarySearch(p.neighbors, peer)
	return ok
}

// RoundUnknown is the Round of a message relayed on another node's tree
// (BroadcastOn with a root other than this node): its hops from the root
// are unknown, it is forwarded as RoundUnknown, and it never drives the tree
// optimisation, which would otherwise take the relay for the root and pull
// the root's tree towards it.
const RoundUnknown uint32 = 0

// Broadcast sends a message to every node along this node's own tree. Merge
// is not called for it: the application holds it already, or its handler is
// a LocalRecorder and is told now.
func (p *Protocol) Broadcast(topic string, id, payload []byte) error {
	return p.BroadcastOn(topic, p.self, id, payload)
}

// BroadcastOn broadcasts on the tree of root (not necessarily this node).
// A replica uses it to pass on, on an owner's tree, state it learned by
// other means (an exchange). Merge is not called for it, as for Broadcast.
//
// Round: when root is this node, the first hop is round 1, as for
// Broadcast. Otherwise the message carries RoundUnknown all the way: this
// node's distance to root is not known (it may not be on root's tree at
// all), and rounds counted from the relay would make the optimisation swap
// root's links towards the relay. A copy of such a message that turns out
// to be a Duplicate does not prune either: it says nothing about root's
// tree, where the relay's parent naturally holds the payload already.
func (p *Protocol) BroadcastOn(topic, root string, id, payload []byte) error {
	h, ok := p.handlers[topic]
	if !ok {
		return fmt.Errorf("%w %q", ErrNoHandler, topic)
	}
	if root == "" || len(root) > MaxNameLen {
		return fmt.Errorf("plumtree: root %q: length must be 1..%d", root, MaxNameLen)
	}
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("plumtree: id of %d bytes: must be 1..%d", len(id), MaxIDLen)
	}
	if len(payload) > MaxPayloadLen {
		return fmt.Errorf("plumtree: payload of %d bytes exceeds the %d-byte limit", len(payload), MaxPayloadLen)
	}
	if r, ok := h.(LocalRecorder); ok {
		r.RecordLocal(id, payload)
	}
	round := RoundUnknown
	if root == p.self {
		round = 1
	}
	key := msgKey{topic, string(id)}
	delete(p.missing, key)
	p.remember(key, root, 0, "", payload)
	p.push(p.tree(root), topic, id, root, round, payload, "", nil)
	return nil
}

// BroadcastMembers is partisan's broadcast_members: this node's eager and
// lazy peers in the tree of root (the same answer as Peers).
func (p *Protocol) BroadcastMembers(root string) (eager, lazy []string) {
	return p.Peers(root)
}

// Step handles a message received from a neighbour. An error means the
// message was not acted on (malformed, or for a topic without a handler);
// it changes no protocol state, only counters.
func (p *Protocol) Step(from string, m Message) error {
	if err := validate(m); err != nil {
		return fmt.Errorf("plumtree: message from %s: %w", from, err)
	}
	p.stats.Received[m.Type]++
	if m.Type != MsgGossip && !p.isNeighbor(from) {
		// Only neighbours shape the tree, take part in exchanges and
		// queries: a message from anyone else (in flight when the link
		// went down, or a confused peer) is ignored. A payload is still
		// good data and is merged, though it changes no link.
		p.stats.FromStrangers++
		return nil
	}
	switch m.Type {
	case MsgGossip:
		return p.onGossip(from, m)
	case MsgIHave:
		p.onIHave(from, m)
	case MsgGraft:
		return p.onGraft(from, m)
	case MsgPrune:
		p.tree(m.Root).makeLazy(from)
	case MsgExchange:
		return p.onExchange(from, m)
	case MsgExchangeEnd:
		p.onExchangeEnd(from, m)
	case MsgTreeQuery:
		p.onTreeQuery(from, m)
	case MsgTreeReply:
		p.onTreeReply(from, m)
	}
	return nil
}

// validate refuses what the codec lets through but the protocol cannot use.
func validate(m Message) error {
	switch m.Type {
	case MsgGossip:
		if len(m.ID) == 0 || m.Root == "" {
			return fmt.Errorf("%v without id or root", m.Type)
		}
	case MsgGraft, MsgPrune:
		if m.Root == "" {
			return fmt.Errorf("%v without root", m.Type)
		}
	case MsgTreeQuery:
		if m.Root == "" || m.Origin == "" {
			return fmt.Errorf("%v without root or origin", m.Type)
		}
	case MsgIHave:
		for _, a := range m.IHaves {
			if len(a.ID) == 0 || a.Root == "" {
				return fmt.Errorf("%v entry without id or root", m.Type)
			}
		}
	case MsgExchange, MsgExchangeEnd, MsgTreeReply:
	default:
		return fmt.Errorf("unknown type %d", uint8(m.Type))
	}
	return nil
}

func (p *Protocol) handler(topic string) (Handler, error) {
	h, ok := p.handlers[topic]
	if !ok {
		p.stats.Unhandled++
		return nil, fmt.Errorf("%w %q", ErrNoHandler, topic)
	}
	return h, nil
}

func (p *Protocol) onGossip(from string, m Message) error {
	h, err := p.handler(m.Topic)
	if err != nil {
		return err
	}
	verdict, actions := h.Merge(from, m.ID, m.Payload)
	key := msgKey{m.Topic, string(m.ID)}
	// Whatever the verdict, the payload is here: stop waiting for it.
	miss := p.missing[key]
	delete(p.missing, key)
	switch verdict {
	case New:
		p.stats.Delivered++
		if o, ok := h.(DeliveryObserver); ok {
			o.Delivered(m.ID, m.Root, m.Round, from)
		}
	case Known:
		// Held, but learned off this tree: this node never passed it on,
		// so the nodes below it are waiting for it. Forward as for New.
		p.stats.KnownForwarded++
	case Held:
		p.stats.Held++
		p.runActions(m.Topic, actions)
		return nil
	default:
		// A second copy over a tree link: that link is redundant for this
		// root, so both ends make it lazy, unless it came the shorter way
		// (then the first copy's link goes). A relayed copy (round unknown)
		// says nothing about the root's tree and prunes nothing.
		p.stats.Duplicates++
		if p.isNeighbor(from) && m.Round != RoundUnknown && !p.optimize(m.Root, key, from, m.Round) {
			p.tree(m.Root).makeLazy(from)
			p.send(from, Message{Type: MsgPrune, Root: m.Root})
		}
		p.runActions(m.Topic, actions)
		return nil
	}
	t := p.tree(m.Root)
	if p.isNeighbor(from) {
		t.makeEager(from)
		p.leaveSiblingsLazy(t, m)
	}
	p.remember(key, m.Root, m.Round, from, m.Payload)
	p.push(t, m.Topic, m.ID, m.Root, nextRound(m.Round), m.Payload, from, siblings(m))
	// The payload came the long way while a lazy link had announced it
	// from much closer to the root: use that link for the tree instead.
	if miss != nil && miss.bestPeer != "" {
		p.optimize(m.Root, key, miss.bestPeer, miss.bestRound)
	}
	p.runActions(m.Topic, actions)
	return nil
}

// runActions carries out what a handler of topic asked for, once it has
// returned. What cannot be done is dropped and counted.
func (p *Protocol) runActions(topic string, actions []Action) {
	for _, a := range actions {
		var err error
		switch a.Kind {
		case ActExchange:
			err = p.StartExchange(topic, a.Peer, a.Start)
		case ActBroadcast:
			err = p.BroadcastOn(topic, a.Root, a.ID, a.Payload)
		default:
			err = fmt.Errorf("plumtree: unknown action %d", a.Kind)
		}
		if err != nil {
			p.stats.ActionsFailed++
		}
	}
}

// push sends a payload on along the eager links and queues announcements for
// the lazy ones, skipping the peer it came from and the holders, peers
// known to have it already.
func (p *Protocol) push(t tree, topic string, id []byte, root string, round uint32, payload []byte, except string, holders []string) {
	targets := p.eagerTargets(t, round, except)
	for peer, lazy := range t.links() {
		if !lazy && peer != except {
			p.send(peer, Message{Type: MsgGossip, Topic: topic, ID: id, Root: root, Round: round, Siblings: targets, Payload: payload})
		}
	}
	for peer, lazy := range t.links() {
		if !lazy || peer == except || slices.Contains(holders, peer) {
			continue
		}
		q := p.lazyQueues[peer]
		if len(q) >= p.cfg.LazyQueueLimit {
			p.stats.LazyDropped++
			continue
		}
		p.lazyQueues[peer] = append(q, Announcement{Topic: topic, ID: id, Root: root, Round: round})
	}
}

func (p *Protocol) onIHave(from string, m Message) {
	for _, a := range m.IHaves {
		h, err := p.handler(a.Topic)
		if err != nil {
			continue
		}
		key := msgKey{a.Topic, string(a.ID)}
		if h.IsStale(a.ID) {
			p.optimize(a.Root, key, from, a.Round)
			continue
		}
		p.announced(from, key, a)
	}
}

// announced records that from has a payload we lack, and starts the graft
// timer if none runs.
func (p *Protocol) announced(from string, key msgKey, a Announcement) {
	e := p.missing[key]
	if e == nil {
		if len(p.missing) >= p.cfg.MaxMissing {
			p.stats.MissingDropped++
			return
		}
		e = &missingEntry{topic: a.Topic, id: slices.Clone(a.ID), root: a.Root, created: p.now}
		p.missing[key] = e
	}
	if e.deadline == 0 {
		e.deadline = p.now + int64(p.cfg.GraftTimeoutTicks)
	}
	if a.Round != RoundUnknown && (e.bestPeer == "" || a.Round < e.bestRound) {
		e.bestPeer, e.bestRound = from, a.Round
	}
	if len(e.announcers) < p.cfg.MaxAnnouncers &&
		!slices.ContainsFunc(e.announcers, func(x announcer) bool { return x.peer == from }) {
		e.announcers = append(e.announcers, announcer{peer: from, round: a.Round})
	}
}

// optimize is the paper's tree optimisation: peer offers the payload of
// key (in an announcement, or in a later copy) at round, and when that is
// at least OptimizationThreshold hops closer to root than the copy this
// node delivered, peer becomes this node's parent in root's tree: the
// parent's link is pruned and peer's grafted. It reports whether it did.
//
// Comparing later copies too, not only announcements, lets the first
// broadcast of a root, which floods every link, build a shallow tree: its
// first copies win by latency, not by hops, and a shorter copy arriving
// just after would otherwise be pruned. The graft is sent to a peer whose
// copy came over an eager link as well, because that peer prunes this node
// when this node's own copy reaches it.
func (p *Protocol) optimize(root string, key msgKey, peer string, round uint32) bool {
	r := p.recent[key]
	if p.cfg.DisableOptimization || r == nil || r.root != root || r.from == "" || r.from == peer ||
		round == RoundUnknown || r.round == RoundUnknown ||
		int64(r.round)-int64(round) < int64(p.cfg.OptimizationThreshold) ||
		!p.isNeighbor(peer) || !p.isNeighbor(r.from) {
		return false
	}
	t := p.tree(root)
	t.makeEager(peer)
	t.makeLazy(r.from)
	p.send(peer, Message{Type: MsgGraft, Root: root})
	p.send(r.from, Message{Type: MsgPrune, Root: root})
	r.from, r.round = peer, round
	p.stats.Optimizations++
	return true
}

func (p *Protocol) onGraft(from string, m Message) error {
	if len(m.ID) == 0 {
		p.tree(m.Root).makeEager(from) // a relink
		return nil
	}
	// An unknown topic is refused before anything changes.
	h, err := p.handler(m.Topic)
	if err != nil {
		return err
	}
	p.tree(m.Root).makeEager(from)
	payload, ok := h.Graft(m.ID)
	if !ok {
		if r := p.recent[msgKey{m.Topic, string(m.ID)}]; r != nil && r.payload != nil {
			payload, ok = r.payload, true
		}
	}
	if !ok {
		p.stats.GraftMisses++
		return nil
	}
	p.send(from, Message{Type: MsgGossip, Topic: m.Topic, ID: m.ID, Root: m.Root, Round: m.Round, Payload: payload})
	return nil
}

// Tick advances time by one tick: graft timers fire, announcements are
// flushed, anti-entropy starts, and bounded state ages out.
func (p *Protocol) Tick() {
	p.now++
	p.fireGraftTimers()
	if p.now%int64(p.cfg.LazyFlushTicks) == 0 {
		p.flushLazy()
	}
	p.expireRecent()
	if p.now >= p.nextExchange {
		p.periodicExchange()
		p.nextExchange = p.now + p.exchangePeriod()
	}
	p.expireExchanges()
	p.expireQueries()
	for _, topic := range p.topics {
		if tk, ok := p.handlers[topic].(Ticker); ok {
			p.runActions(topic, tk.Tick())
		}
	}
}

func (p *Protocol) fireGraftTimers() {
	if len(p.missing) == 0 {
		return
	}
	var due []msgKey
	for k, e := range p.missing {
		if p.now-e.created >= int64(p.cfg.MissingTTLTicks) {
			delete(p.missing, k)
			p.stats.MissingExpired++
			continue
		}
		if e.deadline != 0 && e.deadline <= p.now {
			due = append(due, k)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].topic != due[j].topic {
			return due[i].topic < due[j].topic
		}
		return due[i].id < due[j].id
	})
	for _, k := range due {
		e := p.missing[k]
		// The payload may have come by other means meanwhile (an exchange,
		// a copy the handler counted as known): grafting for it would
		// only earn a duplicate and a prune.
		if h, ok := p.handlers[e.topic]; ok && h.IsStale(e.id) {
			delete(p.missing, k)
			p.stats.GraftsAvoided++
			continue
		}
		if len(e.announcers) == 0 {
			e.deadline = 0 // until someone else announces it
			continue
		}
		// The announcer goes to the back rather than away: a graft or its
		// answer can be lost, and until the payload arrives (or the entry
		// expires) the next retry asks the next announcer, then this one
		// again, rather than leaving the gap to anti-entropy. Each round
		// through the announcers doubles the wait, so an announcer that
		// cannot answer is not asked every few ticks.
		a := e.announcers[0]
		e.announcers = append(e.announcers[1:], a)
		p.tree(e.root).makeEager(a.peer)
		p.send(a.peer, Message{Type: MsgGraft, Topic: e.topic, ID: e.id, Root: e.root, Round: a.round})
		p.stats.GraftsSent++
		e.grafts++
		rounds := min((e.grafts-1)/len(e.announcers), maxGraftBackoff)
		e.deadline = p.now + int64(p.cfg.GraftRetryTicks)<<rounds
	}
}

// maxGraftBackoff caps the doubling of the graft retry: at most 32 times
// GraftRetryTicks between rounds.
const maxGraftBackoff = 5

func (p *Protocol) flushLazy() {
	if len(p.lazyQueues) == 0 {
		return
	}
	peers := make([]string, 0, len(p.lazyQueues))
	for peer := range p.lazyQueues {
		peers = append(peers, peer)
	}
	slices.Sort(peers)
	for _, peer := range peers {
		q := p.lazyQueues[peer]
		delete(p.lazyQueues, peer)
		for len(q) > 0 {
			n := min(len(q), MaxIHaveEntries)
			p.send(peer, Message{Type: MsgIHave, IHaves: q[:n:n]})
			q = q[n:]
		}
	}
}

// remember records a delivery in the bounded recent set.
func (p *Protocol) remember(key msgKey, root string, round uint32, from string, payload []byte) {
	if old := p.recent[key]; old != nil {
		p.recentSize -= len(old.payload)
	}
	r := &recentEntry{root: root, round: round, from: from, at: p.now}
	if !p.cfg.DisablePayloadCache && p.recentSize+len(payload) <= p.cfg.RecentPayloadBytes {
		r.payload = payload
		p.recentSize += len(payload)
	}
	p.recent[key] = r
	p.recentFIFO = append(p.recentFIFO, recentRef{key: key, at: p.now})
	for len(p.recent) > p.cfg.MaxRecent {
		p.popRecent()
	}
}

func (p *Protocol) expireRecent() {
	for len(p.recentFIFO) > 0 && p.now-p.recentFIFO[0].at >= int64(p.cfg.RecentTTLTicks) {
		p.popRecent()
	}
	// Reclaim the FIFO's backing array once most of it is consumed.
	if cap(p.recentFIFO) > 64 && len(p.recentFIFO) < cap(p.recentFIFO)/4 {
		p.recentFIFO = slices.Clone(p.recentFIFO)
	}
}

func (p *Protocol) popRecent() {
	ref := p.recentFIFO[0]
	p.recentFIFO = p.recentFIFO[1:]
	// A key remembered twice has two FIFO refs; only the newest one owns it.
	if r := p.recent[ref.key]; r != nil && r.at == ref.at {
		p.recentSize -= len(r.payload)
		delete(p.recent, ref.key)
	}
}

// nextRound counts one more hop, saturating so that a hostile round cannot
// wrap around to look like the shortest path. An unknown round stays unknown.
func nextRound(r uint32) uint32 {
	if r == math.MaxUint32 || r == RoundUnknown {
		return r
	}
	return r + 1
}

func (p *Protocol) send(to string, m Message) {
	p.stats.Sent[m.Type]++
	p.out = append(p.out, Envelope{To: to, Msg: m})
}

// Undelivered tells the protocol that the driver could not hand m to its
// transport for peer to (the link's queue was full, or it was going down).
// A payload is then announced to that peer instead, and a refused
// announcement is announced again, so that the peer grafts what it missed
// once the link takes traffic: without this, a burst refused on a peer's
// only eager link would be lost to it for good. Grafts retry on their own
// timers, and a lost prune only costs a duplicate that prunes again.
func (p *Protocol) Undelivered(to string, m Message) {
	if !p.isNeighbor(to) {
		return
	}
	switch m.Type {
	case MsgGossip:
		p.announceTo(to, Announcement{Topic: m.Topic, ID: m.ID, Root: m.Root, Round: m.Round})
	case MsgIHave:
		for _, a := range m.IHaves {
			p.announceTo(to, a)
		}
	}
}

// announceTo queues an announcement for the next lazy flush, within the
// lazy queue's bound.
func (p *Protocol) announceTo(peer string, a Announcement) {
	q := p.lazyQueues[peer]
	if len(q) >= p.cfg.LazyQueueLimit {
		p.stats.LazyDropped++
		return
	}
	p.lazyQueues[peer] = append(q, a)
}
