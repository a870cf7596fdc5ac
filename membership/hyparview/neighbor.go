package hyparview

import "slices"

// Links (paper, section 4.3): NEIGHBOR requests and their replies,
// DISCONNECT, and the promotion of passive peers when the active view has
// room.

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
	// attemptMix: a link to a random cluster node (Mix), which evicts a
	// random active peer when accepted into a full view.
	attemptMix
)

// attempt is a JOIN or NEIGHBOR we sent and whose reply we await until
// deadline; the reply must echo epoch.
type attempt struct {
	peer     Peer
	kind     attemptKind
	epoch    uint64
	deadline uint64
}

// stepNeighbor accepts a high-priority request always, a low-priority one
// only into free room (or from a peer already linked, which renews the link).
func (h *Protocol) stepNeighbor(from Peer, m MsgNeighbor) {
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
func (h *Protocol) accept(from Peer, requestEpoch uint64) {
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

// stepNeighborReply completes the attempt whose epoch the reply echoes: an
// accept links the peer with the epoch the acceptor chose, a refusal puts
// the peer in backoff; either way the next candidate may be tried.
func (h *Protocol) stepNeighborReply(from Peer, m MsgNeighborReply) {
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
		// Only a low-priority request can be refused, and the refusal only
		// says the peer is full: it is not asked with low priority again
		// for a while, but a high-priority request may go to it at once.
		h.refused[from.Name] = h.now + uint64(h.cfg.BackoffTicks)
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
func (h *Protocol) settleUnexpectedReply(from Peer, m MsgNeighborReply) {
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
func (h *Protocol) settleEpoch(peer Peer, link uint64) {
	i := h.activeIndex(peer.Name)
	h.active[i].epoch = max(h.active[i].epoch, link)
}

// stepDisconnect ends the link the peer dropped, unless the DISCONNECT is
// for an older link than the one we hold; the peer stays a passive contact
// but is not asked again before BackoffTicks, so that it is not evicted
// straight back into.
func (h *Protocol) stepDisconnect(from Peer, m MsgDisconnect) {
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

// refill tries one passive peer at a time while the active view has room:
// high priority (the peer must take us) below Config.HighPriorityBelow, low
// otherwise.
func (h *Protocol) refill() {
	if len(h.active)+len(h.attempts) >= h.cfg.ActiveSize {
		return
	}
	for _, a := range h.attempts {
		if a.kind == attemptPromotion {
			return
		}
	}
	high := h.askHigh()
	candidates := h.candidates(high)
	if len(candidates) == 0 {
		return
	}
	h.request(candidates[h.rng.Intn(len(candidates))], attemptPromotion, high)
}

// askHigh reports whether a promotion request now goes with high priority.
func (h *Protocol) askHigh() bool { return len(h.active) < h.cfg.highPriorityBelow() }

// candidates returns the passive peers this node may ask for a link now.
// A peer that refused a low-priority request is skipped only for another
// low-priority one: a high-priority request cannot be refused. A peer that
// disconnected us is skipped for BackoffTicks whatever the priority, so
// that two nodes do not evict each other in a loop; a node left with no
// candidate at all is Isolated and rejoins through the directory instead.
func (h *Protocol) candidates(high bool) []Peer {
	out := make([]Peer, 0, len(h.passive))
	for _, p := range h.passive {
		if h.attemptIndex(p.Name) >= 0 {
			continue
		}
		if _, refused := h.refused[p.Name]; refused && !high {
			continue
		}
		if _, dropped := h.backoff[p.Name]; dropped {
			continue
		}
		out = append(out, p)
	}
	return out
}

// request sends NEIGHBOR to peer and records the attempt.
func (h *Protocol) request(peer Peer, kind attemptKind, high bool) {
	epoch := h.nextEpoch()
	h.attempts = append(h.attempts, attempt{peer: peer, kind: kind, epoch: epoch, deadline: h.now + uint64(h.cfg.NeighborTimeoutTicks)})
	h.send(peer, MsgNeighbor{High: high, Epoch: epoch})
}

// expireAttempts gives up requests whose reply is overdue. A promotion
// candidate that does not answer is dropped from the passive view like a
// failed one; a joiner or contact that does not answer was never there.
func (h *Protocol) expireAttempts() {
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

func (h *Protocol) dropAttempt(name string) {
	if i := h.attemptIndex(name); i >= 0 {
		h.attempts = slices.Delete(h.attempts, i, i+1)
	}
}

func (h *Protocol) attemptIndex(name string) int {
	return slices.IndexFunc(h.attempts, func(a attempt) bool { return a.peer.Name == name })
}
