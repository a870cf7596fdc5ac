// Package broadcast spreads messages to every node of the overlay with
// Plumtree (Leitão, Pereira and Rodrigues, "Epidemic Broadcast Trees",
// SRDS 2007, revised 2019).
//
// Payloads travel eagerly along a spanning tree embedded in the overlay; the
// remaining links carry batched announcements (IHAVE) so that a node that
// misses a payload asks for it (GRAFT) after a timeout and, in doing so,
// repairs the tree. A duplicate payload over a tree link prunes that link
// (PRUNE), which is how the tree forms from the first broadcast. Trees are
// kept per root, as in riak_core and partisan, so each source gets the tree
// that is shortest from it.
//
// The protocol is the pure state machine [Plumtree]: inputs are method calls
// (NeighborUp, NeighborDown, Broadcast, Step, Tick), outputs are values
// returned by Ready, time is counted in ticks and randomness is injected.
// Whether a message is new, stale, or can be re-sent is the application's
// call through a per-topic [Handler], so the protocol keeps no unbounded
// cache of message ids. [Node] is the thin driver that runs a Plumtree over a
// [Transport] such as the membership package's overlay node.
package broadcast
