package plumtree

// Verdict is a handler's answer to a payload received over the tree.
type Verdict uint8

const (
	// New: the payload was not known and is now delivered. The protocol
	// forwards it on the eager links, announces it on the lazy ones and
	// keeps the link it came over eager.
	New Verdict = iota + 1
	// Known: the application already holds what the payload carries but
	// learned it by other means than this tree (an anti-entropy exchange,
	// say), so this node has not forwarded it on the tree: the protocol
	// forwards and announces it as for New, does not prune, and does not
	// count a delivery. (If the protocol itself already pushed this id on
	// this tree, it is a Duplicate after all.)
	Known
	// Duplicate: a second copy over the tree: the link is pruned.
	Duplicate
	// Held: the payload is new but the application cannot use it yet (a
	// CRDT op waiting for an earlier one). The link it came over is kept,
	// nothing is forwarded or announced and no delivery is counted: the
	// application passes it on itself (ActBroadcast) once it can, so the
	// nodes below this one do not all wait on the same gap, and each pull
	// the gap from a node that has it too.
	Held
)

func (v Verdict) String() string {
	switch v {
	case New:
		return "new"
	case Known:
		return "known"
	case Duplicate:
		return "duplicate"
	case Held:
		return "held"
	}
	return "invalid"
}

// ActionKind names an Action.
type ActionKind uint8

const (
	// ActExchange opens an anti-entropy exchange on this topic with Peer at
	// once. Start, when set, is the exchange's first message; otherwise the
	// protocol asks the handler's ExchangeStart.
	ActExchange ActionKind = iota + 1
	// ActBroadcast broadcasts ID and Payload on this topic from this node
	// along the tree of Root, which may be another node (a replica passing
	// on an owner's state on that owner's tree).
	ActBroadcast
)

// Action is something a handler asks the protocol to do. Handlers never
// call back into the protocol: they return actions, which the protocol
// carries out after the handler returns (on the handler's own topic, in the
// order returned). An action that cannot be carried out (a peer that is not
// a neighbour, the exchange limit reached, an invalid id) is dropped and
// counted in Stats.ActionsFailed.
type Action struct {
	Kind    ActionKind
	Peer    string // ActExchange
	Start   []byte // ActExchange, optional
	Root    string // ActBroadcast
	ID      []byte // ActBroadcast
	Payload []byte // ActBroadcast
}

// Handler is the application's side of one topic. The protocol asks it, not
// a cache of its own, whether a message is new: an application that keeps
// state (a CRDT whose op ids are (owner, incarnation, seq)) already knows.
//
// Every method is called from the goroutine that drives the Plumtree and must
// not block, nor call the Protocol: ask for what you need with actions.
// Slices passed in alias protocol buffers: copy what you keep.
type Handler interface {
	// Merge is given a payload that from sent over the tree.
	Merge(from string, id, payload []byte) (Verdict, []Action)
	// IsStale reports whether an announced id is already known (held,
	// waiting for an earlier message, or refused for good): no graft is
	// needed for it.
	IsStale(id []byte) bool
	// Graft returns the payload of id for a peer's GRAFT, rebuilt from the
	// application's state, or false (the protocol then tries its own
	// bounded cache of recent payloads).
	Graft(id []byte) (payload []byte, ok bool)
	// ExchangeStart opens an exchange with peer: its first message, or nil
	// to skip it.
	ExchangeStart(peer string) []byte
	// ExchangeReceive handles a message of exchange x (x says which
	// exchange, which peer, who opened it and which step this is) and
	// returns the reply (nil ends the exchange) and actions. The first
	// message a node receives is the peer's ExchangeStart (Step 0); messages
	// then alternate, at most Config.MaxExchangeSteps in all. A digest/delta
	// exchange: A starts with its digest; B answers with what A lacks plus
	// B's digest; A answers with what B lacks; B returns nil.
	ExchangeReceive(x Exchange, data []byte) (reply []byte, actions []Action)
}

// Ticker is implemented by handlers that age their own state or act on the
// passing of time (a replica retrying the pull of a gap, say); the Plumtree
// calls Tick on them at every one of its ticks, which keeps their notion of
// time in step with the protocol's (and deterministic under simulation),
// and carries out the actions Tick returns.
type Ticker interface {
	Tick() []Action
}

// LocalRecorder is implemented by handlers that must record the messages
// this node broadcasts itself, so that copies coming back are duplicates
// (a SeenSet does). Broadcast and BroadcastOn call RecordLocal before
// sending, from the goroutine that drives the Plumtree. A handler backed by
// application state that already holds the message (a CRDT op applied
// locally) needs not.
type LocalRecorder interface {
	RecordLocal(id, payload []byte)
}

// DeliveryObserver is implemented by handlers that want to know how a new
// message travelled: after Merge accepts a payload as New, Delivered reports
// the tree's root, the hops from it (the simulator's last delivery hop;
// RoundUnknown for a message relayed with BroadcastOn from another node than
// the root), and the neighbour it came from.
type DeliveryObserver interface {
	Delivered(id []byte, root string, round uint32, from string)
}
