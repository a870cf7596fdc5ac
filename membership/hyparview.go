package membership

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
)

// HyParView is the membership protocol of Leitão, Pereira and Rodrigues
// (DSN 2007) as a pure state machine: input arrives through Join, Step,
// LinkFailed and Tick, and everything the node must do comes back from
// Ready. It holds no goroutine, clock or socket, and its only randomness is
// the *rand.Rand it is given, so the same inputs give the same outputs. It
// is not safe for concurrent use.
//
// A peer enters the active view only over a confirmed link: the node that
// sends JOIN or NEIGHBOR adds the peer when the accepting reply arrives; the
// node that accepts adds the requester as it replies (it now holds the
// link). Both sides therefore agree once the reply is delivered, and a
// refused, lost or late reply never leaves one side linked alone: a late
// accept for an attempt that was given up is answered with DISCONNECT.
type HyParView struct {
	self Peer
	cfg  Config
	rng  *rand.Rand

	now   uint64 // ticks since creation
	epoch uint64 // Lamport counter for link epochs (see ProtocolMessage)

	active   []activePeer
	passive  []Peer
	attempts []attempt
	// backoff holds, per peer name, the tick until which the peer is not
	// tried for promotion: it refused us or dropped us.
	backoff map[string]uint64

	nextShuffle uint64
	// lastShuffle is what our last SHUFFLE offered; its reply replaces these
	// entries first, as the paper prescribes.
	lastShuffle []Peer

	ready Ready
}

type activePeer struct {
	peer  Peer
	epoch uint64
}

// attemptKind says why a JOIN or NEIGHBOR request is outstanding, which
// decides what a late or unwelcome accept does.
type attemptKind int

const (
	// attemptJoin: our JOIN to a contact.
	attemptJoin attemptKind = iota + 1
	// attemptForwardJoin: a FORWARD_JOIN walk ended here and we offered the
	// joiner a link; the paper adds the joiner even into a full view.
	attemptForwardJoin
	// attemptPromotion: filling the active view from the passive view.
	attemptPromotion
)

type attempt struct {
	peer     Peer
	kind     attemptKind
	epoch    uint64
	deadline uint64
}

// Ready is what the core asks the driver to do. Each call to
// HyParView.Ready returns what accumulated since the previous call.
//
// Up and Down are net changes of the active view since the previous Ready:
// a peer that entered and left within one batch appears in neither, and a
// peer that left and came back appears in both. Apply Down before Up; then
// send Messages in order.
type Ready struct {
	Messages []Envelope // to send, in order
	Up       []Peer     // peers that entered the active view (link confirmed)
	Down     []PeerDown // peers that left the active view, with why
}

// Envelope is one message to send.
type Envelope struct {
	To  Peer
	Msg ProtocolMessage
	// Transient is set when To is not in the active view as of this Ready:
	// the message goes over a short-lived connection (a JOIN to a contact, a
	// NEIGHBOR attempt, a shuffle reply, the DISCONNECT to a peer just
	// dropped) rather than an active link.
	Transient bool
}

// PeerDown reports a peer that left the active view. (The contract calls
// this type LinkDown; that name is taken by the LinkDown EventType
// constant.)
type PeerDown struct {
	Peer   Peer
	Reason string // one of the Reason* constants
}

// Why a peer left the active view.
const (
	ReasonDisconnect = "disconnect" // the peer sent DISCONNECT (it evicted us)
	ReasonEvicted    = "evicted"    // we dropped the peer to make room
	ReasonFailed     = "failed"     // the driver reported the link lost
	ReasonFull       = "full"       // a late accept found the view full again
)

// NewHyParView returns the core for node self. It panics if cfg is invalid
// (see Config.Validate) or rng is nil: both are programming errors the
// driver checks before it starts.
func NewHyParView(self Peer, cfg Config, rng *rand.Rand) *HyParView {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if rng == nil {
		panic("membership: NewHyParView needs a *rand.Rand")
	}
	if self.Name == "" {
		panic("membership: NewHyParView needs a peer name")
	}
	h := &HyParView{
		self:    self,
		cfg:     cfg,
		rng:     rng,
		backoff: make(map[string]uint64),
	}
	// Spread first shuffles over one period, so that nodes started together
	// do not shuffle in lockstep.
	h.nextShuffle = 1 + uint64(rng.Intn(cfg.ShuffleTicks))
	return h
}

// Self returns the node's own identity.
func (h *HyParView) Self() Peer { return h.self }

// Active returns a copy of the active view, sorted by name.
func (h *HyParView) Active() []Peer {
	out := make([]Peer, 0, len(h.active))
	for _, a := range h.active {
		out = append(out, a.peer)
	}
	sortPeers(out)
	return out
}

// Passive returns a copy of the passive view, sorted by name.
func (h *HyParView) Passive() []Peer {
	out := slices.Clone(h.passive)
	sortPeers(out)
	return out
}

// Isolated reports that the node has no active peer, no passive peer left to
// try and no request outstanding: only a new Join can bring it back, so the
// driver rejoins through its other sources of contacts (memberlist).
func (h *HyParView) Isolated() bool {
	return len(h.active) == 0 && len(h.passive) == 0 && len(h.attempts) == 0
}

// Join starts joining the overlay through contact: it sends JOIN, and the
// contact enters the active view when it accepts. Joining through self, or
// through a peer already active, does nothing.
func (h *HyParView) Join(contact Peer) {
	if contact.Name == "" || contact.Name == h.self.Name || h.activeIndex(contact.Name) >= 0 {
		return
	}
	h.observeAddr(contact)
	h.dropAttempt(contact.Name)
	epoch := h.nextEpoch()
	h.attempts = append(h.attempts, attempt{peer: contact, kind: attemptJoin, epoch: epoch, deadline: h.now + uint64(h.cfg.NeighborTimeoutTicks)})
	h.send(contact, MsgJoin{Epoch: epoch})
}

// Step handles message m that arrived from peer from. Messages that claim to
// come from self or from a nameless peer are dropped.
func (h *HyParView) Step(from Peer, m ProtocolMessage) {
	if from.Name == "" || from.Name == h.self.Name {
		return
	}
	h.observeAddr(from)
	switch m := m.(type) {
	case MsgJoin:
		h.stepJoin(from, m)
	case MsgForwardJoin:
		h.stepForwardJoin(from, m)
	case MsgDisconnect:
		h.stepDisconnect(from, m)
	case MsgNeighbor:
		h.stepNeighbor(from, m)
	case MsgNeighborReply:
		h.stepNeighborReply(from, m)
	case MsgShuffle:
		h.stepShuffle(from, m)
	case MsgShuffleReply:
		h.stepShuffleReply(m)
	}
}

// LinkFailed tells the core that the link to peer is lost or could not be
// opened. The peer leaves both views (a failed peer is no spare contact),
// any attempt towards it is given up, and a passive peer is tried in its
// place.
func (h *HyParView) LinkFailed(peer Peer) {
	if i := h.activeIndex(peer.Name); i >= 0 {
		h.removeActive(i, ReasonFailed)
	}
	h.removePassive(peer.Name)
	h.dropAttempt(peer.Name)
	h.refill()
}

// Tick advances logical time by one tick: it expires attempts whose reply
// is overdue, shuffles every ShuffleTicks, and keeps trying to fill the
// active view from the passive view.
func (h *HyParView) Tick() {
	h.now++
	h.expireAttempts()
	for name, until := range h.backoff {
		if until <= h.now {
			delete(h.backoff, name)
		}
	}
	if h.now >= h.nextShuffle {
		h.nextShuffle = h.now + uint64(h.cfg.ShuffleTicks)
		h.shuffle()
	}
	h.refill()
}

// Ready returns what accumulated since the previous call and starts a new
// batch.
func (h *HyParView) Ready() Ready {
	rd := h.ready
	h.ready = Ready{}
	for i := range rd.Messages {
		rd.Messages[i].Transient = h.activeIndex(rd.Messages[i].To.Name) < 0
	}
	return rd
}

// stepJoin: the contact always takes the joiner (evicting one random peer
// if full) and sends FORWARD_JOIN with ttl ARWL to every other active peer.
func (h *HyParView) stepJoin(from Peer, m MsgJoin) {
	h.observeEpoch(m.Epoch)
	h.accept(from, m.Epoch)
	for _, a := range h.active {
		if a.peer.Name != from.Name {
			h.send(a.peer, MsgForwardJoin{Joiner: from, TTL: uint32(h.cfg.ARWL)})
		}
	}
}

// stepForwardJoin follows the paper: the walk ends at ttl 0 or at a node
// with no other neighbour, which offers the joiner a link; the hop at ttl
// PRWL keeps the joiner as a passive contact.
func (h *HyParView) stepForwardJoin(from Peer, m MsgForwardJoin) {
	joiner := m.Joiner
	if joiner.Name == "" || joiner.Name == h.self.Name {
		return
	}
	h.observeAddr(joiner)
	if m.TTL == 0 || len(h.active) <= 1 {
		h.offerLink(joiner)
		return
	}
	if int(m.TTL) == h.cfg.PRWL {
		h.addPassive(joiner)
	}
	next, ok := h.randomActive(from.Name, joiner.Name)
	if !ok {
		h.offerLink(joiner)
		return
	}
	h.send(next, MsgForwardJoin{Joiner: joiner, TTL: m.TTL - 1})
}

// offerLink asks the joiner at the end of a FORWARD_JOIN walk for a link;
// high priority, since a joiner accepts whoever the walks bring.
func (h *HyParView) offerLink(joiner Peer) {
	if h.activeIndex(joiner.Name) >= 0 || h.attemptIndex(joiner.Name) >= 0 {
		return
	}
	h.request(joiner, attemptForwardJoin, true)
}

func (h *HyParView) stepDisconnect(from Peer, m MsgDisconnect) {
	h.observeEpoch(m.Epoch)
	if ai := h.attemptIndex(from.Name); ai >= 0 && m.Epoch >= h.attempts[ai].epoch {
		// The peer accepted our request and dropped the link again before
		// its reply reached us (they travel on different connections): the
		// attempt is over, and its accept, when it comes, is undone.
		h.attempts = slices.Delete(h.attempts, ai, ai+1)
	} else {
		i := h.activeIndex(from.Name)
		if i < 0 || m.Epoch < h.active[i].epoch {
			return // not linked, or a late DISCONNECT of an older link
		}
		h.removeActive(i, ReasonDisconnect)
	}
	h.addPassive(from)
	h.backoff[from.Name] = h.now + uint64(h.cfg.BackoffTicks)
	h.refill()
}

func (h *HyParView) stepNeighbor(from Peer, m MsgNeighbor) {
	h.observeEpoch(m.Epoch)
	if !m.High && len(h.active) >= h.cfg.ActiveSize && h.activeIndex(from.Name) < 0 {
		h.send(from, MsgNeighborReply{Accept: false, Epoch: m.Epoch})
		return
	}
	h.accept(from, m.Epoch)
}

// accept takes from into the active view on its request of the given epoch
// and replies. The link gets a fresh epoch, newer than anything this node
// has seen, so a DISCONNECT of any link it knew before cannot cut this one;
// the reply tells the requester which epoch to keep. A request from a peer
// already active (it restarted, or both sides asked at once) replaces the
// link the same way.
func (h *HyParView) accept(from Peer, requestEpoch uint64) {
	link := h.nextEpoch()
	if i := h.activeIndex(from.Name); i >= 0 {
		h.active[i].epoch = link
	} else {
		// Their request makes ours redundant; its late accept finds the
		// link active and only settles the epoch.
		h.dropAttempt(from.Name)
		h.addActive(from, link)
	}
	h.send(from, MsgNeighborReply{Accept: true, Epoch: requestEpoch, Link: link})
}

func (h *HyParView) stepNeighborReply(from Peer, m MsgNeighborReply) {
	h.observeEpoch(m.Epoch)
	h.observeEpoch(m.Link)
	ai := h.attemptIndex(from.Name)
	if ai < 0 || h.attempts[ai].epoch != m.Epoch {
		h.settleUnexpectedReply(from, m)
		return
	}
	att := h.attempts[ai]
	h.attempts = slices.Delete(h.attempts, ai, ai+1)
	switch {
	case !m.Accept:
		h.backoff[from.Name] = h.now + uint64(h.cfg.BackoffTicks)
	case h.activeIndex(from.Name) >= 0:
		h.settleEpoch(from, m.Link)
	case len(h.active) >= h.cfg.ActiveSize && att.kind == attemptPromotion:
		// Requests we accepted meanwhile filled the view: give the link back
		// rather than evict a working one to make room for a spare.
		h.send(from, MsgDisconnect{Epoch: m.Link})
		h.addPassive(from)
	default:
		h.addActive(from, m.Link)
	}
	h.refill()
}

// settleUnexpectedReply handles a reply that matches no outstanding
// attempt: it answers an attempt we gave up (timed out, or made redundant
// by the peer's own request). An accept from a peer we hold settles the
// link's epoch; an accept from a peer we do not hold is undone with
// DISCONNECT so the peer does not keep a one-sided link.
func (h *HyParView) settleUnexpectedReply(from Peer, m MsgNeighborReply) {
	if !m.Accept {
		return
	}
	if h.activeIndex(from.Name) >= 0 {
		h.settleEpoch(from, m.Link)
		return
	}
	h.send(from, MsgDisconnect{Epoch: m.Link})
}

// settleEpoch merges an epoch the peer holds for our link: both sides keep
// the largest epoch either has seen for it, so they agree once every reply
// is delivered.
func (h *HyParView) settleEpoch(peer Peer, link uint64) {
	i := h.activeIndex(peer.Name)
	h.active[i].epoch = max(h.active[i].epoch, link)
}

// stepShuffle forwards the walk while ttl and neighbours remain; its last
// hop answers the origin with as many passive peers as it received and
// keeps what it received, replacing first the entries it sent back.
func (h *HyParView) stepShuffle(from Peer, m MsgShuffle) {
	if m.Origin.Name == "" || m.Origin.Name == h.self.Name {
		return
	}
	ttl := m.TTL
	if ttl > 0 {
		ttl--
	}
	if ttl > 0 && len(h.active) > 1 {
		if next, ok := h.randomActive(from.Name, m.Origin.Name); ok {
			h.send(next, MsgShuffle{Origin: m.Origin, TTL: ttl, Peers: m.Peers})
			return
		}
	}
	candidates := slices.DeleteFunc(slices.Clone(h.passive), func(p Peer) bool { return p.Name == m.Origin.Name })
	reply := h.sample(candidates, len(m.Peers))
	h.send(m.Origin, MsgShuffleReply{Peers: reply})
	// The origin lists itself first; take it even from a sender that did not.
	h.integratePassive(append([]Peer{m.Origin}, m.Peers...), reply)
}

func (h *HyParView) stepShuffleReply(m MsgShuffleReply) {
	h.integratePassive(m.Peers, h.lastShuffle)
	h.lastShuffle = nil
}

// shuffle sends self, KActive active peers and KPassive passive peers on a
// random walk of ARWL hops (the paper's walk length; gen_hypar does the
// same) starting at a random active peer.
func (h *HyParView) shuffle() {
	target, ok := h.randomActive()
	if !ok {
		return
	}
	others := make([]Peer, 0, len(h.active))
	for _, a := range h.active {
		if a.peer.Name != target.Name {
			others = append(others, a.peer)
		}
	}
	offered := h.sample(others, h.cfg.KActive)
	offered = append(offered, h.sample(h.passive, h.cfg.KPassive)...)
	h.lastShuffle = offered
	peers := append([]Peer{h.self}, offered...)
	h.send(target, MsgShuffle{Origin: h.self, TTL: uint32(h.cfg.ARWL), Peers: peers})
}

// integratePassive adds received peers to the passive view; when it is
// full, an entry of preferEvict (what we just gave away) goes first, else a
// random older one. Addresses of known peers are not overwritten from hearsay.
func (h *HyParView) integratePassive(received, preferEvict []Peer) {
	if h.cfg.PassiveSize == 0 {
		return
	}
	evictable := slices.Clone(preferEvict)
	added := 0 // the last `added` passive entries came in this batch
	for _, p := range received {
		if p.Name == "" || p.Name == h.self.Name || h.activeIndex(p.Name) >= 0 || h.passiveIndex(p.Name) >= 0 {
			continue
		}
		if len(h.passive) >= h.cfg.PassiveSize {
			victim := -1
			for len(evictable) > 0 && victim < 0 {
				victim = h.passiveIndex(evictable[0].Name)
				evictable = evictable[1:]
			}
			if victim < 0 {
				victim = h.randomOlderPassive(added)
			}
			h.passive = slices.Delete(h.passive, victim, victim+1)
		}
		h.passive = append(h.passive, p)
		added++
	}
}

// randomOlderPassive picks a random passive entry other than the last
// `recent` ones (just received), unless only those are left.
func (h *HyParView) randomOlderPassive(recent int) int {
	older := len(h.passive) - recent
	if older <= 0 {
		return h.rng.Intn(len(h.passive))
	}
	return h.rng.Intn(older)
}

// refill tries one passive peer at a time while the active view has room:
// high priority (the peer must take us) below Config.HighPriorityBelow, low
// otherwise. Peers in backoff are skipped.
func (h *HyParView) refill() {
	if len(h.active)+len(h.attempts) >= h.cfg.ActiveSize {
		return
	}
	for _, a := range h.attempts {
		if a.kind == attemptPromotion {
			return
		}
	}
	candidates := make([]Peer, 0, len(h.passive))
	for _, p := range h.passive {
		if _, waiting := h.backoff[p.Name]; !waiting && h.attemptIndex(p.Name) < 0 {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return
	}
	high := len(h.active) < max(1, h.cfg.HighPriorityBelow)
	h.request(candidates[h.rng.Intn(len(candidates))], attemptPromotion, high)
}

// request sends NEIGHBOR to peer and records the attempt.
func (h *HyParView) request(peer Peer, kind attemptKind, high bool) {
	epoch := h.nextEpoch()
	h.attempts = append(h.attempts, attempt{peer: peer, kind: kind, epoch: epoch, deadline: h.now + uint64(h.cfg.NeighborTimeoutTicks)})
	h.send(peer, MsgNeighbor{High: high, Epoch: epoch})
}

// expireAttempts gives up requests whose reply is overdue. A promotion
// candidate that does not answer is dropped from the passive view like a
// failed one; a joiner or contact that does not answer was never there.
func (h *HyParView) expireAttempts() {
	kept := h.attempts[:0]
	for _, a := range h.attempts {
		if a.deadline > h.now {
			kept = append(kept, a)
			continue
		}
		if a.kind == attemptPromotion {
			h.removePassive(a.peer.Name)
		}
	}
	clear(h.attempts[len(kept):])
	h.attempts = kept
}

// addActive links peer, evicting one random active peer if the view is
// full. Evicting at most one per accepted link is what keeps a burst of
// high-priority requests from emptying a view.
func (h *HyParView) addActive(peer Peer, epoch uint64) {
	h.removePassive(peer.Name)
	h.dropAttempt(peer.Name)
	if len(h.active) >= h.cfg.ActiveSize {
		victim := h.rng.Intn(len(h.active))
		evicted := h.active[victim]
		h.send(evicted.peer, MsgDisconnect{Epoch: evicted.epoch})
		h.removeActive(victim, ReasonEvicted)
		h.addPassive(evicted.peer)
	}
	h.active = append(h.active, activePeer{peer: peer, epoch: epoch})
	h.ready.Up = append(h.ready.Up, peer)
}

func (h *HyParView) removeActive(i int, reason string) {
	peer := h.active[i].peer
	h.active = slices.Delete(h.active, i, i+1)
	if j := slices.IndexFunc(h.ready.Up, func(p Peer) bool { return p.Name == peer.Name }); j >= 0 {
		h.ready.Up = slices.Delete(h.ready.Up, j, j+1)
		return
	}
	h.ready.Down = append(h.ready.Down, PeerDown{Peer: peer, Reason: reason})
}

// addPassive keeps peer as a spare contact, evicting a random one if full.
func (h *HyParView) addPassive(peer Peer) {
	if h.cfg.PassiveSize == 0 || peer.Name == h.self.Name || h.activeIndex(peer.Name) >= 0 || h.passiveIndex(peer.Name) >= 0 {
		return
	}
	if len(h.passive) >= h.cfg.PassiveSize {
		victim := h.rng.Intn(len(h.passive))
		h.passive = slices.Delete(h.passive, victim, victim+1)
	}
	h.passive = append(h.passive, peer)
}

func (h *HyParView) removePassive(name string) {
	if i := h.passiveIndex(name); i >= 0 {
		h.passive = slices.Delete(h.passive, i, i+1)
	}
}

func (h *HyParView) dropAttempt(name string) {
	if i := h.attemptIndex(name); i >= 0 {
		h.attempts = slices.Delete(h.attempts, i, i+1)
	}
}

// observeAddr records a peer's address as heard from the peer itself (or
// from its own JOIN relayed by FORWARD_JOIN): a node that comes back on a
// new address replaces the old one.
func (h *HyParView) observeAddr(p Peer) {
	if p.Addr == "" {
		return
	}
	if i := h.activeIndex(p.Name); i >= 0 {
		h.active[i].peer.Addr = p.Addr
	}
	if i := h.passiveIndex(p.Name); i >= 0 {
		h.passive[i].Addr = p.Addr
	}
	if i := h.attemptIndex(p.Name); i >= 0 {
		h.attempts[i].peer.Addr = p.Addr
	}
}

func (h *HyParView) nextEpoch() uint64 {
	h.epoch++
	return h.epoch
}

func (h *HyParView) observeEpoch(e uint64) {
	h.epoch = max(h.epoch, e)
}

func (h *HyParView) send(to Peer, m ProtocolMessage) {
	h.ready.Messages = append(h.ready.Messages, Envelope{To: to, Msg: m})
}

// randomActive picks a random active peer whose name is not excluded.
func (h *HyParView) randomActive(exclude ...string) (Peer, bool) {
	candidates := make([]Peer, 0, len(h.active))
	for _, a := range h.active {
		if !slices.Contains(exclude, a.peer.Name) {
			candidates = append(candidates, a.peer)
		}
	}
	if len(candidates) == 0 {
		return Peer{}, false
	}
	return candidates[h.rng.Intn(len(candidates))], true
}

// sample returns up to n distinct random elements of peers, which it does
// not modify.
func (h *HyParView) sample(peers []Peer, n int) []Peer {
	pool := slices.Clone(peers)
	n = min(n, len(pool))
	for i := range n {
		j := i + h.rng.Intn(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:n:n]
}

func (h *HyParView) activeIndex(name string) int {
	return slices.IndexFunc(h.active, func(a activePeer) bool { return a.peer.Name == name })
}

func (h *HyParView) passiveIndex(name string) int {
	return slices.IndexFunc(h.passive, func(p Peer) bool { return p.Name == name })
}

func (h *HyParView) attemptIndex(name string) int {
	return slices.IndexFunc(h.attempts, func(a attempt) bool { return a.peer.Name == name })
}

func sortPeers(peers []Peer) {
	slices.SortFunc(peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
}

// String summarises the node's views, for logs and tests.
func (h *HyParView) String() string {
	return fmt.Sprintf("%s active=%s passive=%s", h.self.Name, peerList(h.Active()), peerList(h.Passive()))
}
