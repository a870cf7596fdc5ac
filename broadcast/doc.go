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
// returned by plumtree.Ready, time is counted in ticks and randomness is injected.
// Whether a message is new, stale, or can be re-sent is the application's
// call through a per-topic [plumtree.Handler], so the protocol keeps no unbounded
// cache of message ids. [Node] is the thin driver that runs a Plumtree over a
// [Transport] such as the membership package's overlay node.
//
// # Using it from an application
//
// Register a plumtree.Handler per topic on every node, then Broadcast. A handler
// backed by replicated state (the registry's CRDT, whose op ids are owner,
// incarnation and sequence) answers Merge (New, Known by other means, or a
// Duplicate), IsStale and Graft from that state, and runs anti-entropy
// through ExchangeStart/ExchangeReceive: a digest, then the deltas each side
// lacks. Handlers never call the Node: they return plumtree.Actions (open an
// exchange with a peer now, broadcast on a root's tree), which the protocol
// carries out once they return. Anti-entropy runs once on each new link (the
// end whose name sorts lower opens it), and with one random neighbour about
// every ExchangeTicks, each node on its own randomised schedule; an
// exchange is freed at both ends as soon as either ends it. StartExchange and
// CancelExchanges drive it by hand, and BroadcastOn passes on state on
// another root's tree. Applications without such state use a
// [plumtree.SeenSet], whose limits its documentation lists.
//
// # Delivery guarantees
//
// A payload reaches every node connected to its source as long as the links
// hold long enough for announcements and grafts (a few ticks). A message
// lost in the transport (a full send queue, a link going down) is repaired by
// a graft when another neighbour announces it; when no neighbour does, only
// anti-entropy repairs it. Duplicates never reach the application twice as
// long as the handler tells them apart.
//
// # Measuring
//
// Stats counts messages sent and received by type; payload messages received
// (Received[plumtree.MsgGossip]) over n-1 per broadcast give the paper's relative
// message redundancy, and a handler that implements [plumtree.DeliveryObserver]
// learns each delivery's hop count (the last delivery hop).
//
// # Introspection
//
// Peers (or BroadcastMembers) returns a node's eager and lazy peers for a
// root (partisan's debug_get_peers and broadcast_members), QueryTree collects the tree of a root from the nodes
// that answer (debug_get_tree), Exchanges lists the exchanges in progress.
package broadcast
