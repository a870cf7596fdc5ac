package hyparview

import (
	"fmt"
	"math/rand"
	"slices"
)

// Protocol is the membership protocol of Leitão, Pereira and Rodrigues
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
type Protocol struct {
	self Peer
	cfg  Config
	rng  *rand.Rand

	now   uint64 // ticks since creation
	epoch uint64 // Lamport counter for link epochs (see ProtocolMessage)

	active   []activePeer
	passive  []Peer
	attempts []attempt
	// backoff holds, per peer name, the tick until which the peer is not
	// tried for promotion while we hold another link: it dropped us.
	backoff map[string]uint64
	// refused holds, per peer name, the tick until which the peer is not
	// asked with low priority: it refused such a request (it was full).
	refused map[string]uint64

	nextShuffle uint64
	// lastShuffle is what our last SHUFFLE offered; its reply replaces these
	// entries first, as the paper prescribes.
	lastShuffle []Peer
	// origins holds the origins of the last shuffles seen passing through
	// (see Island).
	origins originRing

	// dir and policy run the overlay policy (policy.go), once SetDirectory
	// was called.
	dir    Directory
	policy policyState

	ready Ready
}

// New returns the core for node self. It panics if cfg is invalid
// (see Config.Validate) or rng is nil: both are programming errors the
// driver checks before it starts.
func New(self Peer, cfg Config, rng *rand.Rand) *Protocol {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if rng == nil {
		panic("membership: New needs a *rand.Rand")
	}
	if self.Name == "" {
		panic("membership: New needs a peer name")
	}
	h := &Protocol{
		self:    self,
		cfg:     cfg,
		rng:     rng,
		backoff: make(map[string]uint64),
		refused: make(map[string]uint64),
	}
	// Spread first shuffles over one period, so that nodes started together
	// do not shuffle in lockstep.
	h.nextShuffle = 1 + uint64(rng.Intn(cfg.ShuffleTicks))
	return h
}

// Self returns the node's own identity.
func (h *Protocol) Self() Peer { return h.self }

// Active returns a copy of the active view, sorted by name.
func (h *Protocol) Active() []Peer {
	out := make([]Peer, 0, len(h.active))
	for _, a := range h.active {
		out = append(out, a.peer)
	}
	sortPeers(out)
	return out
}

// Passive returns a copy of the passive view, sorted by name.
func (h *Protocol) Passive() []Peer {
	out := slices.Clone(h.passive)
	sortPeers(out)
	return out
}

// Isolated reports that the node has no active peer, no request
// outstanding and no passive peer it may ask: only a new Join can bring it
// back, so it rejoins through the cluster's directory (see SetDirectory).
func (h *Protocol) Isolated() bool {
	return len(h.active) == 0 && h.Stranded()
}

// Stranded reports that the node is short of links (it would ask with high
// priority), has no request outstanding and has no passive peer it may
// ask: its links can only come from nodes that find it, and the nodes that
// find it are those that join through it. While joins pour in, such a node
// and its joiners close into a clique cut off from the overlay (a contact
// that evicts its joiner before its walks spread it leaves the joiner with
// the joiners that came through it, and the contact in backoff). The
// overlay policy rejoins a stranded node through the directory, as it does
// an isolated one.
func (h *Protocol) Stranded() bool {
	return h.askHigh() && len(h.attempts) == 0 && len(h.candidates(true)) == 0
}

// Join starts joining the overlay through contact: it sends JOIN, and the
// contact enters the active view when it accepts. Joining through self, or
// through a peer already active, does nothing.
func (h *Protocol) Join(contact Peer) {
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
func (h *Protocol) Step(from Peer, m ProtocolMessage) {
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
func (h *Protocol) LinkFailed(peer Peer) {
	if i := h.activeIndex(peer.Name); i >= 0 {
		h.removeActive(i, ReasonFailed)
	}
	h.removePassive(peer.Name)
	h.dropAttempt(peer.Name)
	h.refill()
}

// TransientFailed tells the core that a message to peer over a short-lived
// connection (an Envelope with Transient set) could not be delivered: the
// peer is unreachable from here, so an attempt towards it is given up and
// it leaves the passive view. An active link to the same peer is left
// alone: it runs over its own connection, whose failure the driver reports
// with LinkFailed.
func (h *Protocol) TransientFailed(peer Peer) {
	if h.activeIndex(peer.Name) >= 0 {
		return
	}
	if i := h.attemptIndex(peer.Name); i >= 0 && h.attempts[i].kind == attemptJoin {
		// A rejoin's contact is unreachable (the directory still lists a
		// dead member): the next tick may try another at once.
		h.policy.lastRejoin = 0
	}
	h.removePassive(peer.Name)
	h.dropAttempt(peer.Name)
	h.refill()
}

// Tick advances logical time by one tick: it expires attempts whose reply
// is overdue, shuffles every ShuffleTicks, and keeps trying to fill the
// active view from the passive view.
func (h *Protocol) Tick() {
	h.now++
	h.expireAttempts()
	expire(h.backoff, h.now)
	expire(h.refused, h.now)
	if h.now >= h.nextShuffle {
		h.nextShuffle = h.now + uint64(h.cfg.ShuffleTicks)
		h.shuffle()
	}
	h.refill()
	if h.dir != nil {
		h.runPolicy()
	}
}

// Ready returns what accumulated since the previous call and starts a new
// batch.
func (h *Protocol) Ready() Ready {
	rd := h.ready
	h.ready = Ready{}
	for i := range rd.Messages {
		rd.Messages[i].Transient = h.activeIndex(rd.Messages[i].To.Name) < 0
	}
	return rd
}

func (h *Protocol) send(to Peer, m ProtocolMessage) {
	h.ready.Messages = append(h.ready.Messages, Envelope{To: to, Msg: m})
}

func (h *Protocol) nextEpoch() uint64 {
	h.epoch++
	return h.epoch
}

func (h *Protocol) observeEpoch(e uint64) {
	h.epoch = max(h.epoch, e)
}

// String summarises the node's views, for logs and tests.
func (h *Protocol) String() string {
	return fmt.Sprintf("%s active=%s passive=%s", h.self.Name, peerList(h.Active()), peerList(h.Passive()))
}

// expire deletes the entries of a backoff map whose tick has come.
func expire(until map[string]uint64, now uint64) {
	for name, t := range until {
		if t <= now {
			delete(until, name)
		}
	}
}
