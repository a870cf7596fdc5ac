package plumtree

// Handler is the application's side of one topic. The protocol asks it, not
// a cache of its own, whether a message is new: an application that keeps
// state (a CRDT whose op ids are (owner, incarnation, seq)) already knows.
//
// Every method is called from the goroutine that drives the Plumtree and must
// not block. Slices passed in alias protocol buffers: copy what you keep.
type Handler interface {
	// Merge is given a received payload. It returns true if the message was
	// new (it is now delivered, and the protocol forwards it) and false if
	// it was already known (a duplicate: the protocol prunes the link). A
	// message that is new but cannot apply yet (a CRDT op waiting for an
	// earlier one) is new: return true, or the tree loses a good link.
	Merge(id, payload []byte) bool
	// IsStale reports whether an announced id is already known, so that no
	// graft is needed for it.
	IsStale(id []byte) bool
	// Graft returns the payload of id for a peer that asked for it, or false
	// if the application no longer has it (the protocol then tries its own
	// bounded cache of recent payloads).
	Graft(id []byte) (payload []byte, ok bool)

	// ExchangeStart opens an anti-entropy exchange with peer and returns its
	// first message (say, a digest), or nil to skip this exchange.
	ExchangeStart(peer string) []byte
	// ExchangeReceive handles an exchange message from peer and returns the
	// answer, or nil to end the exchange. The first message a node receives
	// is the peer's ExchangeStart; messages then alternate, at most
	// Config.MaxExchangeSteps in all. A digest/delta exchange: A starts with
	// its digest; B answers with what A lacks plus B's digest; A answers with
	// what B lacks; B returns nil.
	ExchangeReceive(peer string, data []byte) (reply []byte)
}

// Ticker is implemented by handlers that age their own state; the Plumtree
// calls Tick on them at every one of its ticks, which keeps their notion of
// time in step with the protocol's (and deterministic under simulation).
type Ticker interface {
	Tick()
}

// LocalRecorder is implemented by handlers that must record the messages
// this node broadcasts itself, so that copies coming back are duplicates
// (a SeenSet does). Broadcast calls RecordLocal before sending, from the
// goroutine that drives the Plumtree. A handler backed by application state
// that already holds the message (a CRDT op applied locally) needs not.
type LocalRecorder interface {
	RecordLocal(id, payload []byte)
}

// DeliveryObserver is implemented by handlers that want to know how a new
// message travelled: after Merge accepts a payload, Delivered reports the
// tree's root, the hops from it (the simulator's last delivery hop), and
// the neighbour it came from.
type DeliveryObserver interface {
	Delivered(id []byte, root string, round uint32, from string)
}
