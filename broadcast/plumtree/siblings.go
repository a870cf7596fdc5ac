package plumtree

// Siblings: a copy of a payload names the other peers its sender pushed
// it to. A receiver linked to one of them would otherwise push its own
// copy there, one hop behind the sender's, only to have it pruned: on a
// small cluster's full mesh a root's first payloads would cross every
// link, and a burst sends several before the first prune is back. Those
// links go lazy at once instead, on both ends, since each sibling reads
// the same list; the announcements still flow over them, so a sibling
// whose copy was lost grafts as from any lazy peer.

// eagerTargets is the sibling list for the copies push is about to send:
// the eager peers of t but except. It is nil when the hops from the root
// are unknown (a relay's copy says nothing about the root's tree) or when
// there is at most one target, who would only read its own name.
func (p *Protocol) eagerTargets(t tree, round uint32, except string) []string {
	if round == RoundUnknown {
		return nil
	}
	var targets []string
	for peer, lazy := range t.links() {
		if !lazy && peer != except {
			targets = append(targets, peer)
		}
	}
	if len(targets) < 2 {
		return nil
	}
	return targets
}

// leaveSiblingsLazy makes lazy, in t, the links to the siblings m names:
// they have the payload from m's sender at m's round.
func (p *Protocol) leaveSiblingsLazy(t tree, m Message) {
	if m.Round == RoundUnknown {
		return
	}
	for _, s := range m.Siblings {
		t.makeLazy(s)
	}
}
