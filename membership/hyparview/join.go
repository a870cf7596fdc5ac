package hyparview

// Joining (paper, section 4.2): JOIN to a contact, and the FORWARD_JOIN
// random walks that spread the joiner into active and passive views.

// stepJoin: the contact always takes the joiner (evicting one random peer
// if full) and sends FORWARD_JOIN with ttl ARWL to every other active peer.
func (h *Protocol) stepJoin(from Peer, m MsgJoin) {
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
func (h *Protocol) stepForwardJoin(from Peer, m MsgForwardJoin) {
	joiner := m.Joiner
	if joiner.Name == "" || joiner.Name == h.self.Name {
		return
	}
	h.observeAddr(joiner)
	// A walk is never longer than our own ARWL, whatever the sender says.
	m.TTL = min(m.TTL, uint32(h.cfg.ARWL))
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
func (h *Protocol) offerLink(joiner Peer) {
	if h.activeIndex(joiner.Name) >= 0 || h.attemptIndex(joiner.Name) >= 0 {
		return
	}
	// Each offer may evict a peer when accepted; a burst of walks ending
	// here (many joins at once, or a hostile peer) would otherwise open
	// requests without bound. Past ActiveSize outstanding offers the joiner
	// is kept as a passive contact instead.
	offers := 0
	for _, a := range h.attempts {
		if a.kind == attemptForwardJoin {
			offers++
		}
	}
	if offers >= h.cfg.ActiveSize {
		h.addPassive(joiner)
		return
	}
	h.request(joiner, attemptForwardJoin, true)
}
