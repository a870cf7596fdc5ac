package hyparview

import (
	"slices"
	"strings"
)

// The two views and the small operations on them that keep their
// invariants: bounded sizes, never self, never a peer in both.

type activePeer struct {
	peer  Peer
	epoch uint64
}

// addActive links peer, evicting one random active peer if the view is
// full. Evicting at most one per accepted link is what keeps a burst of
// high-priority requests from emptying a view.
func (h *Protocol) addActive(peer Peer, epoch uint64) {
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

func (h *Protocol) removeActive(i int, reason string) {
	peer := h.active[i].peer
	h.active = slices.Delete(h.active, i, i+1)
	if j := slices.IndexFunc(h.ready.Up, func(p Peer) bool { return p.Name == peer.Name }); j >= 0 {
		h.ready.Up = slices.Delete(h.ready.Up, j, j+1)
		return
	}
	h.ready.Down = append(h.ready.Down, PeerDown{Peer: peer, Reason: reason})
}

// addPassive keeps peer as a spare contact, evicting a random one if full.
func (h *Protocol) addPassive(peer Peer) {
	if h.cfg.PassiveSize == 0 || peer.Name == h.self.Name || h.activeIndex(peer.Name) >= 0 || h.passiveIndex(peer.Name) >= 0 {
		return
	}
	if len(h.passive) >= h.cfg.PassiveSize {
		victim := h.rng.Intn(len(h.passive))
		h.passive = slices.Delete(h.passive, victim, victim+1)
	}
	h.passive = append(h.passive, peer)
}

func (h *Protocol) removePassive(name string) {
	if i := h.passiveIndex(name); i >= 0 {
		h.passive = slices.Delete(h.passive, i, i+1)
	}
}

// observeAddr records a peer's address as heard from the peer itself (or
// from its own JOIN relayed by FORWARD_JOIN): a node that comes back on a
// new address replaces the old one.
func (h *Protocol) observeAddr(p Peer) {
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

// randomActive picks a random active peer whose name is not excluded.
func (h *Protocol) randomActive(exclude ...string) (Peer, bool) {
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
func (h *Protocol) sample(peers []Peer, n int) []Peer {
	pool := slices.Clone(peers)
	n = min(n, len(pool))
	for i := range n {
		j := i + h.rng.Intn(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:n:n]
}

func (h *Protocol) activeIndex(name string) int {
	return slices.IndexFunc(h.active, func(a activePeer) bool { return a.peer.Name == name })
}

func (h *Protocol) passiveIndex(name string) int {
	return slices.IndexFunc(h.passive, func(p Peer) bool { return p.Name == name })
}

func sortPeers(peers []Peer) {
	slices.SortFunc(peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
}
