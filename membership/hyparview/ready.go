package hyparview

// Ready is what the core asks the driver to do. Each call to
// HyParView.Ready returns what accumulated since the previous call.
//
// Up and Down are net changes of the active view since the previous Ready:
// a peer that entered and left within one batch appears in neither, and a
// peer that left and came back appears in both. Apply Down before Up; then
// send Messages in order.
type Ready struct {
	Messages []Envelope // to send, in order
	Up       []Peer     // peers that entered the active view (link confirmed)
	Down     []PeerDown // peers that left the active view, with why
	// Reconnect lists failed members the overlay policy wants the driver
	// to reach through its failure detector (memberlist's join on the
	// peer's Addr, as the Directory gave it); see SetDirectory.
	Reconnect []Peer
	// Mixes counts the Mix calls the overlay policy made in this batch,
	// for the driver's metrics.
	Mixes int
	// Rejoins counts the Join calls the overlay policy made for an
	// isolated node in this batch.
	Rejoins int
}

// Envelope is one message to send.
type Envelope struct {
	To  Peer
	Msg ProtocolMessage
	// Transient is set when To is not in the active view as of this Ready:
	// the message goes over a short-lived connection (a JOIN to a contact, a
	// NEIGHBOR attempt, a shuffle reply, the DISCONNECT to a peer just
	// dropped) rather than an active link.
	Transient bool
}

// PeerDown reports a peer that left the active view. (The contract calls
// this type LinkDown; that name is taken by the LinkDown EventType
// constant.)
type PeerDown struct {
	Peer   Peer
	Reason string // one of the Reason* constants
}

// Why a peer left the active view.
const (
	ReasonDisconnect = "disconnect" // the peer sent DISCONNECT (it evicted us)
	ReasonEvicted    = "evicted"    // we dropped the peer to make room
	ReasonFailed     = "failed"     // the driver reported the link lost
)
