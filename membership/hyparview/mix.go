package hyparview

// Mix asks contact, a random node of the cluster named by a source of
// membership outside the overlay (the driver's memberlist), for a link with
// high priority, as the end of a FORWARD_JOIN walk does: the contact takes
// it even when full, and this node, once the accept arrives, evicts a
// random active peer if it must.
//
// HyParView alone never links two parts of an overlay whose active views
// are full: after a partition heals, each side has refilled from its own
// nodes, nobody promotes a passive peer, and nobody is isolated, so the
// overlay stays split for good. A rare link to a node drawn from the whole
// cluster joins the parts again (and keeps the overlay mixed); the driver
// decides how often, so that the cluster as a whole makes a few per period
// whatever its size.
func (h *Protocol) Mix(contact Peer) {
	if contact.Name == "" || contact.Name == h.self.Name || h.activeIndex(contact.Name) >= 0 || h.attemptIndex(contact.Name) >= 0 {
		return
	}
	h.observeAddr(contact)
	h.request(contact, attemptMix, true)
}
