package plumtree

// Siblings: the root's copies of a payload name the peers it pushed them
// to. A receiver linked to one of them would otherwise push its own copy
// there, one hop behind the root's, only to have it pruned: on a small
// cluster's full mesh a root's first payloads would cross every link,
// and a burst sends several before the first prune is back. Those links
// go lazy at once instead, on both ends, since each sibling reads the
// same list.
//
// Nor do siblings announce the payload to each other: each has it from
// the root, whose link to it either carried it, refused it (the root then
// announces it there itself: Undelivered), or broke (and the link that
// replaces it starts an exchange). On a small cluster's full mesh those
// announcements were a frame per pair of siblings per tick, each waking a
// process, that told no one anything.
//
// Only the root names them. Deeper in a large cluster's random overlay a
// node's children are rarely linked to each other (at 1,000 nodes the
// first round's redundancy did not move), while every relayed copy would
// carry the names: at 10,000 nodes that is an allocation per relay and
// tens of bytes on every copy of a payload of about a hundred.

// eagerTargets is the sibling list for the copies push is about to send:
// the eager peers of t but except. It is nil unless the copies are the
// root's own (round 1) and go to two peers or more.
func (p *Protocol) eagerTargets(t tree, round uint32, except string) []string {
	if round != 1 {
		return nil
	}
	// Counted first: most pushes of a settled tree have one target, and
	// need no list at all.
	n := 0
	for peer, lazy := range t.links() {
		if !lazy && peer != except {
			n++
		}
	}
	if n < 2 {
		return nil
	}
	targets := make([]string, 0, n)
	for peer, lazy := range t.links() {
		if !lazy && peer != except {
			targets = append(targets, peer)
		}
	}
	return targets
}

// siblings are the peers m names as holding their own copies from m's
// sender, at m's round: none for a copy whose round is unknown.
func siblings(m Message) []string {
	if m.Round == RoundUnknown {
		return nil
	}
	return m.Siblings
}

// leaveSiblingsLazy makes lazy, in t, the links to the siblings m names.
func (p *Protocol) leaveSiblingsLazy(t tree, m Message) {
	for _, s := range siblings(m) {
		t.makeLazy(s)
	}
}
