package hyparview

import "math"

// A small group of nodes can end up linked only among themselves, every
// active view full, with no failure anywhere (joins can close such a clique):
// nothing in HyParView reconnects it, and random mixing reaches it only
// rarely. Shuffles give it away. Every node's shuffle walks ARWL hops, so
// the shuffles passing through a node of a large overlay come from many
// distinct origins, while those passing through a node of an island of m
// nodes come from at most m-1.
//
// The test counts distinct origins among the last islandVisits shuffles
// that passed through the node, not within a time window: how many pass per
// period depends on ARWL (about ARWL per node and period), but how many
// distinct origins a fixed number of visits brings does not, as long as
// enough nodes lie within ARWL hops. Memory is bounded by islandVisits.

// islandOrigins is the number of distinct shuffle origins below which a
// node suspects it sits in an island: 2·ActiveSize (islands of up to that
// many nodes are noticed), but no more than a quarter of the nodes a walk of
// ARWL hops can come from (ActiveSize + ActiveSize·(ActiveSize-1) + ...),
// since a node of a large overlay sees origins only from that
// neighbourhood; and never less than ActiveSize+1, since the smallest
// island whose views are all full has ActiveSize+1 nodes, each seeing
// ActiveSize origins. Zero means the check cannot work (ARWL below 2:
// walks come only from direct neighbours, as many as an island's) and
// Island is always false.
func (c Config) islandOrigins() int {
	if c.ARWL < 2 || c.ActiveSize < 2 {
		return 0
	}
	return max(c.ActiveSize+1, min(2*c.ActiveSize, c.walkReach()/4))
}

// walkReach is how many nodes a shuffle walk of ARWL hops can start from
// (capped: beyond a few hundred it no longer matters).
func (c Config) walkReach() int {
	reach, ring := 0, c.ActiveSize
	for range c.ARWL {
		reach += ring
		ring *= c.ActiveSize - 1
		if reach > 1000 {
			return 1000
		}
	}
	return reach
}

// islandVisits is how many recent shuffle visits the check looks at: the
// fewest with which a node of a large overlay expects three times islandOrigins
// distinct origins (a margin the measured overlays need: their
// neighbourhoods overlap more than random graphs'). About half of a node's visits come from its ActiveSize
// direct neighbours and half from the rest of its walk reach, which is
// what the expectation assumes.
func (c Config) islandVisits() int {
	threshold := c.islandOrigins()
	if threshold == 0 {
		return 0
	}
	near, far := float64(c.ActiveSize), float64(c.walkReach()-c.ActiveSize)
	for v := threshold; ; v++ {
		half := float64(v) / 2
		expected := near*(1-math.Exp(-half/near)) + far*(1-math.Exp(-half/far))
		if expected >= float64(3*threshold) || v >= 16*threshold {
			return v
		}
	}
}

// originRing remembers the origins of the last shuffles that passed
// through the node, and how many times each appears among them.
type originRing struct {
	names []string // circular, len <= cap
	next  int
	count map[string]int
}

func (r *originRing) add(origin string, size int) {
	if size == 0 {
		return
	}
	if r.count == nil {
		r.count = make(map[string]int, size)
		r.names = make([]string, 0, size)
	}
	if len(r.names) < size {
		r.names = append(r.names, origin)
	} else {
		old := r.names[r.next]
		if r.count[old]--; r.count[old] == 0 {
			delete(r.count, old)
		}
		r.names[r.next] = origin
		r.next = (r.next + 1) % size
	}
	r.count[origin]++
}

// noteShuffleOrigin records that origin's shuffle passed through this node.
func (h *Protocol) noteShuffleOrigin(origin string) {
	h.origins.add(origin, h.cfg.islandVisits())
}

// Island reports that, among the last shuffles that passed through this
// node, fewer came from distinct origins than an overlay much larger than
// an island would bring (see islandOrigins): the sign of a small part of
// the overlay cut off from the rest. It is false until the node has seen
// enough shuffles to tell, and always for ARWL below 2. The overlay policy
// (see SetDirectory) answers it with Mix to a member of the whole cluster.
func (h *Protocol) Island() bool {
	visits := h.cfg.islandVisits()
	return visits > 0 && len(h.origins.names) == visits && len(h.origins.count) < h.cfg.islandOrigins()
}
