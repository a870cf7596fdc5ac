package hyparview

// A small group of nodes can end up linked only among themselves, every
// active view full, with no failure anywhere (joins can close such a clique):
// nothing in HyParView reconnects it, and random mixing reaches it only
// rarely. Shuffles give it away: every node's shuffle walks ARWL hops, so a
// node in a large overlay sees many distinct origins pass through it, while
// a node in a small island only ever sees its few neighbours'.

// islandOrigins is the number of distinct shuffle origins below which a
// node suspects it sits in an island: more than the nodes of any island
// small enough to go unnoticed by random mixing.
func (c Config) islandOrigins() int { return 2 * c.ActiveSize }

// noteShuffleOrigin records that origin's shuffle passed through this node.
func (h *Protocol) noteShuffleOrigin(origin string) {
	if h.origins == nil {
		h.origins = make(map[string]uint64)
	}
	h.origins[origin] = h.now
}

// forgetOldOrigins drops origins not seen within the island window.
func (h *Protocol) forgetOldOrigins() {
	window := h.cfg.islandWindow()
	for name, at := range h.origins {
		if h.now-at > window {
			delete(h.origins, name)
		}
	}
}

// Island reports that, over the last IslandWindowTicks, the shuffles that
// passed through this node came from fewer than 2·ActiveSize distinct nodes:
// the sign of a small part of the overlay cut off from the rest. It is
// false until the node has run for a whole window. The driver answers it
// with Mix to a node from the whole cluster, when the cluster is much
// larger than such an island could be.
func (h *Protocol) Island() bool {
	return h.now >= h.cfg.islandWindow() && len(h.origins) < h.cfg.islandOrigins()
}
