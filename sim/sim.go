package sim

import (
	"fmt"
	mathrand "math/rand"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/membership/hyparview"
	"github.com/cpggo/cpg/registry/replication"
)

// Simulator runs HyParView, Plumtree and (optionally) the registry's CRDT
// of many nodes in one goroutine on simulated time. It drives the very
// state machines the real drivers run, and glues them the way the drivers
// do: a core's Ready is carried out after every input, link changes of the
// HyParView core feed the Plumtree core (Down before Up), Plumtree sends only
// over active links, and a payload from a peer outside the active view is
// dropped.
//
// Nothing in a run depends on anything but Config.Seed and the calls made:
// one random source for the network, one derived source per state machine,
// events ordered by (time, sequence), no goroutines, no map iteration where
// order matters. A Simulator is not safe for concurrent use.
type Simulator struct {
	cfg Config
	rng *rand.Rand
	// peerRng drives the comparison protocols' traffic (flood and gossip
	// latencies, loss and targets), so that running them beside Plumtree
	// does not change the Plumtree run.
	peerRng *rand.Rand
	now     time.Duration
	agenda  agenda

	nodes   []*node
	started []int32 // nodes that have been started, in start order
	live    int

	// linkClock holds, per directed link, the arrival time of the last
	// message sent on it, so that link messages arrive in order.
	linkClock map[uint64]time.Duration
	// failing holds the (node, peer) pairs whose failure report is pending.
	failing map[uint64]struct{}
	// oneSided holds, per (node, peer), since when node has held a link its
	// peer does not: the keepalive model (keepAliveCheck).
	oneSided map[uint64]time.Duration
	// side is each node's partition side; messages between sides are lost.
	side        []int32
	partitioned bool
	// partitionEpoch counts Partition calls, so that a view split
	// scheduled for one partition does not fire after it healed.
	partitionEpoch int

	// dir is the memberlist stand-in (directory.go).
	dir directory

	bcasts  []*bcast
	payload []byte
	// incoming is the Plumtree message being stepped, so that a handler
	// can read the round of the payload it is given.
	incoming *plumtree.Message

	gossipLive   int // nodes with a non-empty gossip queue
	gossipRounds bool

	// registry: nodes started from now on hold a registry replica.
	registry bool
	// names is the replicas' shared string interner (registry.go).
	names *crdt.Interner

	stats Stats
	trace traceHash
}

// Stats counts what the network carried.
type Stats struct {
	Events     uint64 // events processed
	Messages   uint64 // messages delivered to a live node
	Lost       uint64 // messages lost: to a dead node, across a partition, or at random
	SendErrors uint64 // Plumtree messages to a peer outside the active view
	HyParView  uint64 // HyParView messages delivered
	Plumtree   uint64 // Plumtree messages delivered
	Flood      uint64 // flooding peer messages delivered
	Gossip     uint64 // memberlist-style gossip packets delivered
	LinkFailed uint64 // link failures reported to HyParView cores
	Rejoins    uint64 // joins of isolated nodes
	Mixes      uint64 // HyParView.Mix calls of the overlay policy
	Reconnects uint64 // memberlist joins of failed members the cores asked for
	ViewMerges uint64 // member views joined again by a reconnect
	Ticks      uint64 // ticks of the whole cluster
	// RegistryPayloads and RegistryExchanges count the registry topic's
	// payload (GOSSIP) and anti-entropy messages delivered.
	RegistryPayloads  uint64
	RegistryExchanges uint64
}

// node is one simulated process: the cores and the driver state around
// them. A restart replaces the cores and bumps gen, so that messages and
// timers meant for the previous process are recognised as stale.
type node struct {
	idx   int32
	name  string
	alive bool
	gen   uint32
	born  time.Duration // when this process started
	died  time.Duration // when the last process crashed

	hv *hyparview.Protocol
	pt *plumtree.Protocol
	// links are the peers whose link the HyParView core reported up and not
	// yet down: what the driver holds open, and the only peers Plumtree
	// messages may go to.
	links []int32

	gossip *gossipQueue
	reg    *replication.Replica
}

// New returns an empty simulator.
func New(cfg Config) (*Simulator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Simulator{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
		peerRng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x14057b7ef767814f)),
		linkClock: make(map[uint64]time.Duration),
		failing:   make(map[uint64]struct{}),
		oneSided:  make(map[uint64]time.Duration),
		payload:   make([]byte, 64),
	}
	s.schedule(&event{at: cfg.Tick, kind: evTick})
	s.schedule(&event{at: cfg.BroadcastTick, kind: evBroadcastTick})
	return s, nil
}

// Config returns the configuration in effect, defaults applied.
func (s *Simulator) Config() Config { return s.cfg }

// Now returns the simulated time.
func (s *Simulator) Now() time.Duration { return s.now }

// Stats returns the network's counters.
func (s *Simulator) Stats() Stats { return s.stats }

// TraceHash returns a hash of every event processed so far: two runs with
// the same seed and calls have the same hash.
func (s *Simulator) TraceHash() uint64 { return s.trace.sum }

// Len returns the number of nodes ever created (live or not).
func (s *Simulator) Len() int { return len(s.nodes) }

// Live returns the number of live nodes.
func (s *Simulator) Live() int { return s.live }

// Alive reports whether node i is running.
func (s *Simulator) Alive(i int) bool { return s.nodes[i].alive }

// LiveNodes returns the indexes of the live nodes, ascending.
func (s *Simulator) LiveNodes() []int {
	out := make([]int, 0, s.live)
	for i, n := range s.nodes {
		if n.alive {
			out = append(out, i)
		}
	}
	return out
}

// Name returns node i's name.
func (s *Simulator) Name(i int) string { return s.nodes[i].name }

// HyParView returns node i's membership core, for inspection. Calling its
// input methods would bypass the simulated network.
func (s *Simulator) HyParView(i int) *hyparview.Protocol { return s.nodes[i].hv }

// Plumtree returns node i's broadcast core, for inspection.
func (s *Simulator) Plumtree(i int) *plumtree.Protocol { return s.nodes[i].pt }

func nodeName(i int) string { return fmt.Sprintf("n%05d", i) }

// index maps a node name back to its index; names are nodeName's.
func (s *Simulator) index(name string) int32 {
	i, err := strconv.Atoi(name[1:])
	if err != nil || i < 0 || i >= len(s.nodes) {
		panic(fmt.Sprintf("sim: unknown node name %q", name))
	}
	return int32(i)
}

// AddNodes creates count nodes and starts them spaced apart by every: each
// joins through a random node started before it (the first one waits for
// others to join it). It returns the new nodes' indexes.
func (s *Simulator) AddNodes(count int, every time.Duration) []int {
	first := len(s.nodes)
	out := make([]int, count)
	for k := range count {
		i := first + k
		out[k] = i
		s.nodes = append(s.nodes, &node{idx: int32(i), name: nodeName(i)})
		s.side = append(s.side, 0)
		s.schedule(&event{at: s.now + time.Duration(k)*every, kind: evCall, call: func() { s.start(int32(i)) }})
	}
	return out
}

// start runs a fresh process on node i and joins it through a random live
// node started earlier.
func (s *Simulator) start(i int32) {
	n := s.nodes[i]
	if n.alive {
		return
	}
	n.gen++
	n.alive = true
	n.born = s.now
	n.links = n.links[:0]
	s.live++
	self := hyparview.Peer{Name: n.name}
	n.hv = hyparview.New(self, s.cfg.HyParView, mathrand.New(mathrand.NewSource(int64(s.rng.Uint64()))))
	pcfg := s.cfg.Plumtree
	pcfg.Self = n.name
	pcfg.Rand = rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	pt, err := plumtree.NewProtocol(pcfg)
	if err != nil {
		panic(fmt.Sprintf("sim: %v", err)) // Config was validated by the caller's first start
	}
	n.pt = pt
	if err := pt.Register(broadcastTopic, &probe{s: s, node: i}); err != nil {
		panic(err)
	}
	if s.registry {
		s.startReplica(n)
	}
	s.forgetDeliveries(i)
	n.gossip = nil
	contact, ok := s.randomLive(i)
	s.started = append(s.started, i)
	s.memberJoin(i, contact, ok)
	n.hv.SetDirectory(nodeDirectory{s: s, i: i})
	if ok {
		n.hv.Join(hyparview.Peer{Name: s.nodes[contact].name})
	}
	s.flush(n)
}

// randomLive picks a random live node other than except, on except's side
// of a partition: the contact a starting node's join reaches.
func (s *Simulator) randomLive(except int32) (int32, bool) {
	if s.live <= 1 {
		return 0, false
	}
	for tries := 0; tries < 1000; tries++ {
		c := s.started[s.rng.IntN(len(s.started))]
		if c != except && s.nodes[c].alive && s.side[c] == s.side[except] {
			return c, true
		}
	}
	return 0, false
}

// Crash stops the given nodes at once, as a process crash does: their
// peers' drivers see the connections close after CloseDetect.
func (s *Simulator) Crash(nodes ...int) {
	for _, i := range nodes {
		n := s.nodes[i]
		if !n.alive {
			continue
		}
		n.alive = false
		s.live--
		n.links = n.links[:0]
		if n.gossip != nil && n.gossip.q.Len() > 0 {
			s.gossipLive--
		}
		n.gossip = nil
		n.hv, n.pt = nil, nil
		n.reg = nil
		n.died = s.now
		i, gen := int32(i), n.gen
		s.schedule(&event{at: s.now + s.cfg.DetectDelay, kind: evCall, call: func() { s.detectCrash(i, gen) }})
	}
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		for _, p := range n.links {
			if !s.nodes[p].alive {
				s.reportFailure(n, p, s.closeDelay(), false)
			}
		}
	}
}

// Restart starts a crashed node again as a new process with empty state;
// it joins through a random live node.
func (s *Simulator) Restart(i int) {
	s.start(int32(i))
}

// Partition splits the network: sides[k] lists the nodes on side k+1, and
// every node not listed stays on side 0. Messages between sides are lost;
// links across sides fail after KeepAliveTimeout, connection attempts
// after DialTimeout.
func (s *Simulator) Partition(sides ...[]int) {
	for k, side := range sides {
		for _, i := range side {
			s.side[i] = int32(k + 1)
		}
	}
	s.partitioned = true
	s.partitionEpoch++
	epoch := s.partitionEpoch
	s.schedule(&event{at: s.now + s.cfg.DetectDelay, kind: evCall, call: func() { s.splitViews(epoch) }})
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		for _, p := range n.links {
			if s.side[p] != s.side[n.idx] {
				s.reportFailure(n, p, s.cfg.KeepAliveTimeout, false)
			}
		}
	}
}

// Heal ends every partition. The nodes' member views stay split until the
// cores' reconnects join them (see directory.go).
func (s *Simulator) Heal() {
	clear(s.side)
	s.partitioned = false
}

// At schedules f to run at simulated time t (or now, if t is past).
func (s *Simulator) At(t time.Duration, f func()) {
	s.schedule(&event{at: max(t, s.now), kind: evCall, call: f})
}

// RunFor advances simulated time by d.
func (s *Simulator) RunFor(d time.Duration) { s.RunUntil(s.now + d) }

// RunUntil processes every event up to time t and leaves the clock at t.
func (s *Simulator) RunUntil(t time.Duration) {
	for s.agenda.len() > 0 && s.agenda.peek().at <= t {
		e := s.agenda.pop()
		s.step(e)
		s.agenda.release(e)
	}
	s.now = max(s.now, t)
}

// RunWhile advances time one tick at a time, up to limit, while cond
// holds; it returns the time at which cond stopped holding, or false if it
// still held at limit.
func (s *Simulator) RunWhile(limit time.Duration, cond func() bool) (time.Duration, bool) {
	for cond() {
		if s.now >= limit {
			return s.now, false
		}
		s.RunFor(s.cfg.Tick)
	}
	return s.now, true
}

func (s *Simulator) schedule(e *event) { s.agenda.push(e) }

// message returns a fresh event for a message from one node to another.
func (s *Simulator) message(kind eventKind, from, to int32) *event {
	e := s.agenda.alloc()
	e.kind, e.from, e.to = kind, from, to
	return e
}

func (s *Simulator) step(e *event) {
	s.now = e.at
	s.stats.Events++
	s.trace.add(e)
	switch e.kind {
	case evTick:
		s.tick()
		s.schedule(&event{at: s.now + s.cfg.Tick, kind: evTick})
	case evBroadcastTick:
		s.broadcastTick()
		s.schedule(&event{at: s.now + s.cfg.BroadcastTick, kind: evBroadcastTick})
	case evGossipRound:
		s.gossipRound()
	case evHyParView:
		s.deliverHyParView(e)
	case evPlumtree:
		s.deliverPlumtree(e)
	case evFlood:
		s.deliverFlood(e)
	case evGossip:
		s.deliverGossip(e)
	case evLinkFailed:
		s.fireFailure(e)
	case evCall:
		e.call()
	}
}

// tick advances every live node's membership core by one tick, in index
// order, as each node's driver would on its own timer. The overlay policy
// (mixing, rejoining, reconnecting) runs inside the HyParView core's Tick.
func (s *Simulator) tick() {
	s.stats.Ticks++
	if s.stats.Ticks%forgetFailedTicks == 0 {
		s.forgetFailed()
	}
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		n.hv.Tick()
		s.flush(n)
	}
	s.keepAliveCheck()
}

// keepAliveCheck models the drivers' keepalives: a link that its peer does
// not hold gets no keepalive back, as the peer's driver has closed or never
// adopted the connection, and fails after KeepAliveTimeout. Without it a
// link whose opening reply or closing message the model lost would stay up
// at one end for good, carrying nothing. (A link across a partition fails
// the same way, reported when the partition starts.)
func (s *Simulator) keepAliveCheck() {
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		for _, p := range n.links {
			key := linkKey(n.idx, p)
			peer := s.nodes[p]
			if !peer.alive || s.side[n.idx] != s.side[p] || slices.Contains(peer.links, n.idx) {
				delete(s.oneSided, key)
				continue
			}
			since, ok := s.oneSided[key]
			if !ok {
				s.oneSided[key] = s.now
				continue
			}
			if s.now-since >= s.cfg.KeepAliveTimeout {
				delete(s.oneSided, key)
				s.reportFailure(n, p, 0, false)
			}
		}
	}
	for key := range s.oneSided {
		// A link that went away meanwhile starts afresh if it comes back.
		if n, p := linkEnds(key); !slices.Contains(s.nodes[n].links, p) {
			delete(s.oneSided, key)
		}
	}
}

// broadcastTick advances every live node's broadcast core (and with it the
// registry's replica) by one tick, as the broadcast driver's own timer does.
func (s *Simulator) broadcastTick() {
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		n.pt.Tick()
		s.flushPlumtree(n)
	}
}

// forgetFailedTicks spaces the sweeps of failed members past
// ReconnectTimeout.
const forgetFailedTicks = 600

// flush carries out what node n's cores asked for, as the drivers do: link
// changes first (Down before Up), fed to Plumtree; then HyParView's
// messages in order; then Plumtree's.
func (s *Simulator) flush(n *node) {
	rd := n.hv.Ready()
	s.stats.Mixes += uint64(rd.Mixes)
	s.stats.Rejoins += uint64(rd.Rejoins)
	for _, p := range rd.Reconnect {
		s.reconnect(n.idx, s.index(p.Name))
	}
	var leaving []int32
	for _, d := range rd.Down {
		p := s.index(d.Peer.Name)
		n.links = removeLink(n.links, p)
		leaving = append(leaving, p)
		n.pt.NeighborDown(d.Peer.Name)
	}
	for _, up := range rd.Up {
		p := s.index(up.Name)
		if !slices.Contains(n.links, p) {
			n.links = append(n.links, p)
		}
		n.pt.NeighborUp(up.Name)
	}
	for i := range rd.Messages {
		env := &rd.Messages[i]
		to := s.index(env.To.Name)
		// A message to a peer that just left the active view (its
		// DISCONNECT) still goes over the old link, as the driver sends it
		// before retiring the connection.
		overLink := !env.Transient || slices.Contains(leaving, to)
		e := s.message(evHyParView, n.idx, to)
		e.hv, e.transient = env.Msg, !overLink
		s.send(e)
	}
	for _, p := range leaving {
		s.closeLink(n, p)
	}
	s.flushPlumtree(n)
}

// closeLink models the driver closing the connection of a link its core
// retired, after what it sent on it (the DISCONNECT among it). The FIN
// crosses even where the model loses messages, as TCP retransmits it: a
// peer whose core still holds the link (its DISCONNECT was lost) reads the
// end of the connection and reports the link failed, as its driver would,
// instead of holding a link that carries nothing.
func (s *Simulator) closeLink(n *node, p int32) {
	peer := s.nodes[p]
	if !peer.alive || s.side[n.idx] != s.side[p] {
		return // a crash or a partition is reported on its own
	}
	key := failureKey(p, n.idx, false)
	if _, ok := s.failing[key]; ok {
		return
	}
	s.failing[key] = struct{}{}
	// It arrives right behind the link's last message, so that a peer
	// that took the DISCONNECT has had no time to link again.
	at := s.now + s.closeDelay()
	if last := s.linkClock[linkKey(n.idx, p)]; last > s.now {
		at = last
	}
	s.schedule(&event{at: at, kind: evLinkFailed, from: p, fromGen: peer.gen, to: n.idx, closed: true})
}

func (s *Simulator) flushPlumtree(n *node) {
	if !n.pt.HasReady() {
		return
	}
	rd := n.pt.Ready()
	for i := range rd.Messages {
		env := &rd.Messages[i]
		to := s.index(env.To)
		if !slices.Contains(n.links, to) {
			s.stats.SendErrors++
			continue
		}
		e := s.message(evPlumtree, n.idx, to)
		e.pt = &env.Msg
		s.send(e)
	}
}

func removeLink(links []int32, p int32) []int32 {
	if i := slices.Index(links, p); i >= 0 {
		return slices.Delete(links, i, i+1)
	}
	return links
}

// send puts a message on the network: it arrives after one latency draw
// (two over a fresh connection), in order with the earlier messages of the
// same link, unless it is lost at random.
func (s *Simulator) send(e *event) {
	rng := s.rng
	if e.kind == evFlood || e.kind == evGossip {
		rng = s.peerRng
	}
	if s.cfg.Loss > 0 && rng.Float64() < s.cfg.Loss {
		s.stats.Lost++
		s.agenda.release(e)
		return
	}
	e.fromGen = s.nodes[e.from].gen
	e.toGen = s.nodes[e.to].gen
	delay := s.cfg.Latency.Sample(rng)
	if e.transient {
		delay += s.cfg.Latency.Sample(rng)
		e.at = s.now + delay
	} else if e.kind == evGossip {
		e.at = s.now + delay // datagrams: no order between them
	} else {
		key := linkKey(e.from, e.to)
		if e.kind == evFlood {
			key |= 1 << 63 // its own connection: flooding must not delay Plumtree
		}
		e.at = max(s.now+delay, s.linkClock[key])
		s.linkClock[key] = e.at
	}
	s.schedule(e)
}

// reachable reports whether e can be delivered; if not, it counts the loss
// and, if the sender's driver would notice, reports the link failed.
func (s *Simulator) reachable(e *event) bool {
	dst := s.nodes[e.to]
	if dst.alive && dst.gen == e.toGen && s.side[e.from] == s.side[e.to] {
		return true
	}
	s.stats.Lost++
	src := s.nodes[e.from]
	if !src.alive || src.gen != e.fromGen || e.kind == evGossip {
		return false
	}
	delay := time.Duration(0) // a refused connection reports at once
	switch {
	case s.side[e.from] != s.side[e.to] && e.transient:
		delay = s.cfg.DialTimeout
	case s.side[e.from] != s.side[e.to]:
		delay = s.cfg.KeepAliveTimeout
	case !e.transient:
		delay = s.closeDelay()
	}
	if e.transient || slices.Contains(src.links, e.to) {
		s.reportFailure(src, e.to, delay, e.transient)
	}
	return false
}

func (s *Simulator) closeDelay() time.Duration {
	if s.cfg.CloseDetect > 0 {
		return s.cfg.CloseDetect
	}
	return s.cfg.Latency.Sample(s.rng)
}

// reportFailure schedules the driver of n telling its core that the link
// to peer is lost (or, transient, that a message over a short-lived
// connection to peer could not be delivered), unless such a report is
// already pending.
func (s *Simulator) reportFailure(n *node, peer int32, after time.Duration, transient bool) {
	key := failureKey(n.idx, peer, transient)
	if _, ok := s.failing[key]; ok {
		return
	}
	s.failing[key] = struct{}{}
	s.schedule(&event{at: s.now + after, kind: evLinkFailed, from: n.idx, fromGen: n.gen, to: peer, transient: transient})
}

// linkKey keys the directed link from one node to another.
func linkKey(from, to int32) uint64 { return uint64(uint32(from))<<32 | uint64(uint32(to)) }

// linkEnds is the inverse of linkKey.
func linkEnds(key uint64) (from, to int32) { return int32(key >> 32), int32(uint32(key)) }

// failureKey keys a pending failure report; a transient one does not hold
// back the report of the link itself.
func failureKey(from, to int32, transient bool) uint64 {
	key := linkKey(from, to)
	if transient {
		key |= 1 << 63
	}
	return key
}

func (s *Simulator) fireFailure(e *event) {
	delete(s.failing, failureKey(e.from, e.to, e.transient))
	n := s.nodes[e.from]
	if !n.alive || n.gen != e.fromGen {
		return
	}
	// The peer came back (restart, healed partition) and linked again:
	// the report is about a connection that no longer matters.
	if peer := s.nodes[e.to]; peer.alive && s.side[e.from] == s.side[e.to] && slices.Contains(n.links, e.to) && slices.Contains(peer.links, e.from) {
		return
	}
	// A closed connection matters only to a core that still holds the link:
	// one that took the DISCONNECT retired it already.
	if e.closed && !slices.Contains(n.links, e.to) {
		return
	}
	// As the driver does, a failed short-lived send is its own input: it
	// gives up an attempt (and replaces a rejoin's dead contact at the next
	// tick) but leaves a working link to the same peer alone.
	if e.transient {
		n.hv.TransientFailed(hyparview.Peer{Name: s.nodes[e.to].name})
	} else {
		s.stats.LinkFailed++
		n.hv.LinkFailed(hyparview.Peer{Name: s.nodes[e.to].name})
	}
	s.flush(n)
}

func (s *Simulator) deliverHyParView(e *event) {
	if !s.reachable(e) {
		return
	}
	s.stats.Messages++
	s.stats.HyParView++
	n := s.nodes[e.to]
	n.hv.Step(hyparview.Peer{Name: s.nodes[e.from].name}, e.hv)
	s.flush(n)
}

func (s *Simulator) deliverPlumtree(e *event) {
	if !s.reachable(e) {
		return
	}
	n := s.nodes[e.to]
	if !slices.Contains(n.links, e.from) {
		// The driver delivers payloads only from active peers.
		s.stats.Lost++
		return
	}
	s.stats.Messages++
	s.stats.Plumtree++
	m := e.pt
	if m.Type == plumtree.MsgGossip && m.Topic == broadcastTopic {
		if b := s.bcastOf(m.ID); b != nil {
			b.payloadMsgs++
		}
	}
	if m.Topic == replication.Topic {
		switch m.Type {
		case plumtree.MsgGossip:
			s.stats.RegistryPayloads++
		case plumtree.MsgExchange:
			s.stats.RegistryExchanges++
		}
	}
	s.incoming = m
	_ = n.pt.Step(s.nodes[e.from].name, *m)
	s.incoming = nil
	s.flushPlumtree(n)
}
