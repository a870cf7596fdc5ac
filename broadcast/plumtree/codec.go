package plumtree

import (
	"fmt"

	"github.com/cpggo/cpg/internal/wire"
)

// Wire bounds. A decoder refuses anything longer, so a hostile peer cannot
// make a node allocate more than a frame's worth.
const (
	MaxTopicLen      = 255
	MaxIDLen         = 1024
	MaxNameLen       = 255
	MaxPayloadLen    = wire.DefaultMaxFrame - 64<<10
	MaxIHaveEntries  = 4096
	MaxTreeNodes     = 1 << 16
	MaxPeersPerNode  = 1024
	maxExchangeSteps = 1 << 16
)

// AppendMessage appends m's encoding (a type byte, then the fields m.Type
// uses) to b.
func AppendMessage(b []byte, m Message) []byte {
	b = append(b, byte(m.Type))
	switch m.Type {
	case MsgGossip:
		b = wire.AppendString(b, m.Topic)
		b = wire.AppendBytes(b, m.ID)
		b = wire.AppendString(b, m.Root)
		b = wire.AppendUvarint(b, uint64(m.Round))
		b = appendNames(b, m.Siblings)
		b = wire.AppendBytes(b, m.Payload)
	case MsgIHave:
		b = wire.AppendUvarint(b, uint64(len(m.IHaves)))
		for _, a := range m.IHaves {
			b = wire.AppendString(b, a.Topic)
			b = wire.AppendBytes(b, a.ID)
			b = wire.AppendString(b, a.Root)
			b = wire.AppendUvarint(b, uint64(a.Round))
		}
	case MsgGraft:
		b = wire.AppendString(b, m.Topic)
		b = wire.AppendBytes(b, m.ID)
		b = wire.AppendString(b, m.Root)
		b = wire.AppendUvarint(b, uint64(m.Round))
	case MsgPrune:
		b = wire.AppendString(b, m.Root)
	case MsgExchange:
		b = wire.AppendString(b, m.Topic)
		b = wire.AppendUvarint(b, m.Exchange)
		b = wire.AppendUvarint(b, uint64(m.Step))
		b = wire.AppendBytes(b, m.Payload)
	case MsgExchangeEnd:
		b = wire.AppendString(b, m.Topic)
		b = wire.AppendUvarint(b, m.Exchange)
		b = wire.AppendUvarint(b, uint64(m.Step))
	case MsgTreeQuery:
		b = wire.AppendString(b, m.Origin)
		b = wire.AppendUvarint(b, m.Query)
		b = wire.AppendString(b, m.Root)
		b = wire.AppendUvarint(b, uint64(m.Budget))
	case MsgTreeReply:
		b = wire.AppendString(b, m.Origin)
		b = wire.AppendUvarint(b, m.Query)
		b = wire.AppendUvarint(b, uint64(len(m.Tree)))
		for _, n := range m.Tree {
			b = wire.AppendString(b, n.Name)
			b = appendNames(b, n.Eager)
			b = appendNames(b, n.Lazy)
		}
	}
	return b
}

func appendNames(b []byte, names []string) []byte {
	b = wire.AppendUvarint(b, uint64(len(names)))
	for _, s := range names {
		b = wire.AppendString(b, s)
	}
	return b
}

// DecodeMessage decodes one message. It refuses unknown types, fields over
// the wire bounds and trailing bytes. Byte-slice fields alias b.
func DecodeMessage(b []byte) (Message, error) {
	d := wire.NewDecoder(b)
	m := Message{Type: MsgType(d.Byte())}
	switch m.Type {
	case MsgGossip:
		m.Topic = d.String(MaxTopicLen)
		m.ID = d.Bytes(MaxIDLen)
		m.Root = d.String(MaxNameLen)
		m.Round = d.Uint32()
		m.Siblings = decodeNames(d)
		m.Payload = d.Bytes(MaxPayloadLen)
	case MsgIHave:
		n := d.Int(MaxIHaveEntries)
		// Each entry takes at least 4 bytes; never allocate for more than
		// the body can hold.
		if n > d.Len()/4 {
			d.Fail(wire.ErrTruncated)
		}
		if d.Err() == nil && n > 0 {
			m.IHaves = make([]Announcement, n)
			for i := range m.IHaves {
				a := &m.IHaves[i]
				a.Topic = d.String(MaxTopicLen)
				a.ID = d.Bytes(MaxIDLen)
				a.Root = d.String(MaxNameLen)
				a.Round = d.Uint32()
			}
		}
	case MsgGraft:
		m.Topic = d.String(MaxTopicLen)
		m.ID = d.Bytes(MaxIDLen)
		m.Root = d.String(MaxNameLen)
		m.Round = d.Uint32()
	case MsgPrune:
		m.Root = d.String(MaxNameLen)
	case MsgExchange:
		m.Topic = d.String(MaxTopicLen)
		m.Exchange = d.Uvarint()
		m.Step = uint32(d.Int(maxExchangeSteps))
		m.Payload = d.Bytes(MaxPayloadLen)
	case MsgExchangeEnd:
		m.Topic = d.String(MaxTopicLen)
		m.Exchange = d.Uvarint()
		m.Step = uint32(d.Int(maxExchangeSteps))
	case MsgTreeQuery:
		m.Origin = d.String(MaxNameLen)
		m.Query = d.Uvarint()
		m.Root = d.String(MaxNameLen)
		m.Budget = d.Uint32()
	case MsgTreeReply:
		m.Origin = d.String(MaxNameLen)
		m.Query = d.Uvarint()
		n := d.Int(MaxTreeNodes)
		if n > d.Len()/3 {
			d.Fail(wire.ErrTruncated)
		}
		if d.Err() == nil && n > 0 {
			m.Tree = make([]TreeNode, n)
			for i := range m.Tree {
				m.Tree[i].Name = d.String(MaxNameLen)
				m.Tree[i].Eager = decodeNames(d)
				m.Tree[i].Lazy = decodeNames(d)
			}
		}
	default:
		if d.Err() == nil {
			d.Fail(fmt.Errorf("plumtree: unknown message type %d", uint8(m.Type)))
		}
	}
	if err := d.Finish(); err != nil {
		return Message{}, fmt.Errorf("plumtree: decode %v: %w", m.Type, err)
	}
	return m, nil
}

func decodeNames(d *wire.Decoder) []string {
	n := d.Int(MaxPeersPerNode)
	if n > d.Len() {
		d.Fail(wire.ErrTruncated)
	}
	if d.Err() != nil || n == 0 {
		return nil
	}
	names := make([]string, n)
	for i := range names {
		names[i] = d.String(MaxNameLen)
	}
	return names
}
