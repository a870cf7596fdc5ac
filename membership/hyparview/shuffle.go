package hyparview

import "slices"

// Passive view maintenance (paper, section 4.4): the periodic SHUFFLE.

// stepShuffle forwards the walk while ttl and neighbours remain; its last
// hop answers the origin with as many passive peers as it received and
// keeps what it received, replacing first the entries it sent back.
func (h *Protocol) stepShuffle(from Peer, m MsgShuffle) {
	if m.Origin.Name == "" || m.Origin.Name == h.self.Name {
		return
	}
	h.noteShuffleOrigin(m.Origin.Name)
	// A walk is never longer than our own ARWL, whatever the sender says.
	ttl := min(m.TTL, uint32(h.cfg.ARWL))
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

func (h *Protocol) stepShuffleReply(m MsgShuffleReply) {
	h.integratePassive(m.Peers, h.lastShuffle)
	h.lastShuffle = nil
}

// shuffle sends self, KActive active peers and KPassive passive peers on a
// random walk of ARWL hops (the paper's walk length; gen_hypar does the
// same) starting at a random active peer.
func (h *Protocol) shuffle() {
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
func (h *Protocol) integratePassive(received, preferEvict []Peer) {
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
func (h *Protocol) randomOlderPassive(recent int) int {
	older := len(h.passive) - recent
	if older <= 0 {
		return h.rng.Intn(len(h.passive))
	}
	return h.rng.Intn(older)
}
