package membership

import (
	"fmt"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/cpggo/cpg/membership/hyparview"
)

// Frame types on an overlay connection after the handshake. Types 1..63
// belong to HyParView (hyparview.EncodeMessage picks them); the driver's own frames
// sit above that range so the two never collide.
const (
	maxCoreFrameType byte = 63
	// framePayload carries an application payload (Node.Send) verbatim.
	framePayload byte = 64
	// framePing asks the peer to echo the body back in a framePong.
	framePing byte = 65
	// framePong echoes a ping's body; its arrival gives one RTT sample.
	framePong byte = 66
	// frameCredit hands the peer credit for more payload frames (flow.go).
	frameCredit byte = 67
)

// heartbeat is the body of a ping and of the pong that echoes it: a sequence
// number, and the sender's monotonic clock reading when it sent the ping, so
// the sender needs no table of outstanding pings to compute the round trip.
type heartbeat struct {
	Seq  uint64
	Sent int64 // nanoseconds on the pinger's monotonic clock
}

func appendHeartbeat(b []byte, h heartbeat) []byte {
	b = wire.AppendUvarint(b, h.Seq)
	return wire.AppendVarint(b, h.Sent)
}

func decodeHeartbeat(body []byte) (heartbeat, error) {
	d := wire.NewDecoder(body)
	h := heartbeat{Seq: d.Uvarint(), Sent: d.Varint()}
	if err := d.Finish(); err != nil {
		return heartbeat{}, fmt.Errorf("membership: heartbeat frame: %w", err)
	}
	return h, nil
}

// frameClass says which part of the driver handles a frame type, so that a
// reader dispatches without decoding first, and an unknown type is refused
// before its body is looked at.
type frameClass int

const (
	frameUnknown   frameClass = iota
	frameCore                 // a HyParView message: hyparview.DecodeMessage, then the core's Step
	frameData                 // an application payload
	frameHeartbeat            // ping or pong
	frameFlow                 // payload credit
)

func classifyFrame(typ byte) frameClass {
	switch {
	case typ >= 1 && typ <= maxCoreFrameType:
		return frameCore
	case typ == framePayload:
		return frameData
	case typ == framePing || typ == framePong:
		return frameHeartbeat
	case typ == frameCredit:
		return frameFlow
	default:
		return frameUnknown
	}
}

// inboundFrame is one decoded frame from a peer.
type inboundFrame struct {
	typ     byte
	msg     hyparview.ProtocolMessage // frameCore
	payload []byte                    // framePayload
	beat    heartbeat                 // framePing, framePong
	credit  uint64                    // frameCredit
}

// decodeFrame decodes a frame read from an overlay connection. It never
// panics; anything malformed is an error, and the caller drops the
// connection, since a peer that sends garbage cannot be trusted to frame
// the rest of its stream correctly.
func decodeFrame(typ byte, body []byte) (inboundFrame, error) {
	f := inboundFrame{typ: typ}
	switch classifyFrame(typ) {
	case frameCore:
		m, err := hyparview.DecodeMessage(typ, body)
		if err != nil {
			return inboundFrame{}, fmt.Errorf("membership: frame type %d: %w", typ, err)
		}
		f.msg = m
	case frameData:
		f.payload = body
	case frameHeartbeat:
		h, err := decodeHeartbeat(body)
		if err != nil {
			return inboundFrame{}, err
		}
		f.beat = h
	case frameFlow:
		n, err := decodeCredit(body)
		if err != nil {
			return inboundFrame{}, err
		}
		f.credit = n
	default:
		return inboundFrame{}, fmt.Errorf("membership: unknown frame type %d", typ)
	}
	return f, nil
}
