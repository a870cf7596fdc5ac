package hyparview

import (
	"fmt"
	"strings"
)

// ProtocolMessage is one HyParView message between two cores. The driver
// treats it as opaque: EncodeMessage and DecodeMessage put it on the wire,
// and Step takes it back. The concrete types are the Msg* structs.
//
// (The contract calls this type Message; that name is taken by the Message
// EventType constant.)
type ProtocolMessage interface {
	messageType() byte
	fmt.Stringer
}

// Epochs name links. Each node keeps a Lamport counter, raised past every
// epoch it receives. The accepting side of a JOIN or NEIGHBOR gives the new
// link the next value of its counter and returns it in the reply, which the
// requester adopts; so a link is newer than every link either side knew when
// it was made. A DISCONNECT only cuts a link whose epoch is not newer than
// its own, and a NEIGHBOR_REPLY only completes the attempt whose request
// epoch it echoes, so a late message from an old link can neither cut nor
// revive a newer one. When both sides ask at once, each ends up with both
// link epochs and keeps the larger.

// MsgJoin asks a contact to take the sender into its active view; the
// contact always accepts, replies with MsgNeighborReply, and starts the
// FORWARD_JOIN walks.
type MsgJoin struct {
	Epoch uint64
}

// MsgForwardJoin carries a joiner along a random walk: the walk's last hop
// offers the joiner a link, and the hop where TTL equals PRWL keeps the
// joiner in its passive view.
type MsgForwardJoin struct {
	Joiner Peer
	TTL    uint32
}

// MsgDisconnect tells the receiver that the sender dropped the link of the
// given epoch; the receiver moves the sender to its passive view.
type MsgDisconnect struct {
	Epoch uint64
}

// MsgNeighbor asks the receiver for a link. A high-priority request (the
// sender has no active peer) is always accepted, evicting one random peer if
// the view is full; a low-priority one only fits into free room.
type MsgNeighbor struct {
	High  bool
	Epoch uint64
}

// MsgNeighborReply answers MsgJoin and MsgNeighbor. Epoch echoes the
// request's epoch so the requester can match its attempt; Link is the epoch
// the accepting side stored for the link, which the requester adopts.
type MsgNeighborReply struct {
	Accept bool
	Epoch  uint64
	Link   uint64
}

// MsgShuffle walks the overlay with a sample of the origin's views; its last
// hop answers the origin directly with MsgShuffleReply.
type MsgShuffle struct {
	Origin Peer
	TTL    uint32
	Peers  []Peer
}

// MsgShuffleReply returns a sample of the last hop's passive view to the
// shuffle's origin.
type MsgShuffleReply struct {
	Peers []Peer
}

// Message types on the wire (1..63, the range the contract reserves for the
// core).
const (
	typeJoin          byte = 1
	typeForwardJoin   byte = 2
	typeDisconnect    byte = 3
	typeNeighbor      byte = 4
	typeNeighborReply byte = 5
	typeShuffle       byte = 6
	typeShuffleReply  byte = 7
)

func (MsgJoin) messageType() byte          { return typeJoin }
func (MsgForwardJoin) messageType() byte   { return typeForwardJoin }
func (MsgDisconnect) messageType() byte    { return typeDisconnect }
func (MsgNeighbor) messageType() byte      { return typeNeighbor }
func (MsgNeighborReply) messageType() byte { return typeNeighborReply }
func (MsgShuffle) messageType() byte       { return typeShuffle }
func (MsgShuffleReply) messageType() byte  { return typeShuffleReply }

func (m MsgJoin) String() string { return fmt.Sprintf("JOIN epoch=%d", m.Epoch) }

func (m MsgForwardJoin) String() string {
	return fmt.Sprintf("FORWARD_JOIN joiner=%s ttl=%d", m.Joiner, m.TTL)
}

func (m MsgDisconnect) String() string { return fmt.Sprintf("DISCONNECT epoch=%d", m.Epoch) }

func (m MsgNeighbor) String() string {
	prio := "low"
	if m.High {
		prio = "high"
	}
	return fmt.Sprintf("NEIGHBOR %s epoch=%d", prio, m.Epoch)
}

func (m MsgNeighborReply) String() string {
	verdict := "reject"
	if m.Accept {
		verdict = "accept"
	}
	return fmt.Sprintf("NEIGHBOR_REPLY %s epoch=%d link=%d", verdict, m.Epoch, m.Link)
}

func (m MsgShuffle) String() string {
	return fmt.Sprintf("SHUFFLE origin=%s ttl=%d peers=%s", m.Origin, m.TTL, peerList(m.Peers))
}

func (m MsgShuffleReply) String() string {
	return fmt.Sprintf("SHUFFLE_REPLY peers=%s", peerList(m.Peers))
}

func peerList(peers []Peer) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range peers {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	b.WriteByte(']')
	return b.String()
}
