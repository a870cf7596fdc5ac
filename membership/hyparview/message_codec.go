package hyparview

import (
	"fmt"

	"github.com/cpggo/cpg/internal/wire"
)

// Bounds on decoded fields, so that a hostile body cannot make the decoder
// allocate much: names and addresses are short, and a shuffle carries a few
// peers (KActive+KPassive+1 with the defaults is 8).
const (
	maxNameLen      = 255
	maxAddrLen      = 255
	maxShufflePeers = 64
	// MaxEpoch bounds the link epochs a message may carry. A node's counter
	// grows by one per request it sends or accepts, so no honest node gets
	// near it in any lifetime; an epoch beyond it is refused at decode, so
	// that the counter (raised past every epoch received) cannot wrap and
	// let a late DISCONNECT cut a newer link.
	MaxEpoch = 1 << 62
)

// EncodeMessage returns m's wire type (1..63) and body.
func EncodeMessage(m ProtocolMessage) (typ byte, body []byte) {
	switch m := m.(type) {
	case MsgJoin:
		body = wire.AppendUvarint(nil, m.Epoch)
	case MsgForwardJoin:
		body = appendPeer(nil, m.Joiner)
		body = wire.AppendUvarint(body, uint64(m.TTL))
	case MsgDisconnect:
		body = wire.AppendUvarint(nil, m.Epoch)
	case MsgNeighbor:
		body = wire.AppendBool(nil, m.High)
		body = wire.AppendUvarint(body, m.Epoch)
	case MsgNeighborReply:
		body = wire.AppendBool(nil, m.Accept)
		body = wire.AppendUvarint(body, m.Epoch)
		body = wire.AppendUvarint(body, m.Link)
	case MsgShuffle:
		body = appendPeer(nil, m.Origin)
		body = wire.AppendUvarint(body, uint64(m.TTL))
		body = appendPeers(body, m.Peers)
	case MsgShuffleReply:
		body = appendPeers(nil, m.Peers)
	default:
		panic(fmt.Sprintf("membership: EncodeMessage of unknown message %T", m))
	}
	return m.messageType(), body
}

// DecodeMessage parses a body produced by EncodeMessage. It never panics:
// an unknown type, a truncated or oversized field, or trailing bytes is an
// error.
func DecodeMessage(typ byte, body []byte) (ProtocolMessage, error) {
	d := wire.NewDecoder(body)
	var m ProtocolMessage
	switch typ {
	case typeJoin:
		m = MsgJoin{Epoch: decodeEpoch(d)}
	case typeForwardJoin:
		joiner := decodePeer(d)
		m = MsgForwardJoin{Joiner: joiner, TTL: d.Uint32()}
	case typeDisconnect:
		m = MsgDisconnect{Epoch: decodeEpoch(d)}
	case typeNeighbor:
		high := d.Bool()
		m = MsgNeighbor{High: high, Epoch: decodeEpoch(d)}
	case typeNeighborReply:
		accept := d.Bool()
		epoch := decodeEpoch(d)
		m = MsgNeighborReply{Accept: accept, Epoch: epoch, Link: decodeEpoch(d)}
	case typeShuffle:
		origin := decodePeer(d)
		ttl := d.Uint32()
		m = MsgShuffle{Origin: origin, TTL: ttl, Peers: decodePeers(d)}
	case typeShuffleReply:
		m = MsgShuffleReply{Peers: decodePeers(d)}
	default:
		return nil, fmt.Errorf("membership: unknown message type %d", typ)
	}
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("membership: decode message type %d: %w", typ, err)
	}
	return m, nil
}

func decodeEpoch(d *wire.Decoder) uint64 {
	e := d.Uvarint()
	if d.Err() == nil && e > MaxEpoch {
		d.Fail(fmt.Errorf("membership: epoch %d exceeds %d", e, uint64(MaxEpoch)))
	}
	return e
}

func appendPeer(b []byte, p Peer) []byte {
	b = wire.AppendString(b, p.Name)
	return wire.AppendString(b, p.Addr)
}

func appendPeers(b []byte, peers []Peer) []byte {
	b = wire.AppendUvarint(b, uint64(len(peers)))
	for _, p := range peers {
		b = appendPeer(b, p)
	}
	return b
}

func decodePeer(d *wire.Decoder) Peer {
	name := d.String(maxNameLen)
	addr := d.String(maxAddrLen)
	if d.Err() == nil && name == "" {
		d.Fail(fmt.Errorf("membership: peer with an empty name"))
	}
	return Peer{Name: name, Addr: addr}
}

func decodePeers(d *wire.Decoder) []Peer {
	n := d.Int(maxShufflePeers)
	if d.Err() != nil || n == 0 {
		return nil
	}
	peers := make([]Peer, 0, n)
	for range n {
		peers = append(peers, decodePeer(d))
		if d.Err() != nil {
			return nil
		}
	}
	return peers
}
