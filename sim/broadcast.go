package sim

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
)

// Protocol names a broadcast protocol the simulator can run.
type Protocol uint8

const (
	// Plumtree is the broadcast package's protocol over the HyParView
	// overlay: the protocol under test.
	Plumtree Protocol = iota + 1
	// Flood is eager flooding over the same overlay: every node forwards a
	// new message to every active peer but the one it came from. It is
	// Plumtree without lazy links, and bounds its reliability and latency.
	Flood
	// Gossip is memberlist-style gossip (see GossipConfig), which ignores
	// the overlay.
	Gossip
)

func (p Protocol) String() string {
	switch p {
	case Plumtree:
		return "plumtree"
	case Flood:
		return "flood"
	case Gossip:
		return "gossip"
	default:
		return fmt.Sprintf("Protocol(%d)", uint8(p))
	}
}

// broadcastTopic is the Plumtree topic of measured broadcasts.
const broadcastTopic = "sim"

// bcast tracks one broadcast: who delivered it and at which hop.
type bcast struct {
	id     int32
	proto  Protocol
	source int32
	at     time.Duration
	// hops holds, per node, the hop count at delivery plus one (0: not
	// delivered; the source holds 1).
	hops        []uint8
	payloadMsgs int
	depth       int // shortest-path depth of the overlay from source when sent
	last        time.Duration
}

// BroadcastResult is what one broadcast achieved, measured as the Plumtree
// paper does, over the nodes that were up when it was sent and still are.
type BroadcastResult struct {
	ID       int
	Protocol Protocol
	Source   int
	At       time.Duration // when it was sent

	Eligible    int     // live nodes that were running when it was sent
	Delivered   int     // of those, how many delivered it (the source included)
	Reliability float64 // Delivered / Eligible
	// PayloadMessages counts the payload copies received by live nodes
	// (Plumtree GOSSIP messages, flooded copies, gossip copies).
	PayloadMessages int
	// RMR is the relative message redundancy PayloadMessages/(Delivered-1)
	// - 1: 0 when every node received exactly one copy.
	RMR float64
	// LDH is the largest hop count at which a node delivered it.
	LDH int
	// ShortestDepth is the largest shortest-path distance from the source
	// in the active-view graph when the message was sent: the smallest LDH
	// any protocol could reach on that overlay.
	ShortestDepth int
	// Latency is the time from sending to the last delivery.
	Latency time.Duration
}

// Broadcast sends one message from node source with protocol p and returns
// its id, for Result.
func (s *Simulator) Broadcast(source int, p Protocol) (int, error) {
	if source < 0 || source >= len(s.nodes) || !s.nodes[source].alive {
		return 0, fmt.Errorf("sim: broadcast from node %d: not running", source)
	}
	if p == Gossip && s.cfg.Gossip.NewQueue == nil {
		return 0, errNoGossipQueue
	}
	n := s.nodes[source]
	b := &bcast{id: int32(len(s.bcasts)), proto: p, source: int32(source), at: s.now, hops: make([]uint8, len(s.nodes)), last: s.now}
	b.depth = s.depthFrom(source)
	s.bcasts = append(s.bcasts, b)
	b.hops[source] = 1
	switch p {
	case Plumtree:
		if err := n.pt.Broadcast(broadcastTopic, bcastID(b.id), s.payload); err != nil {
			return 0, err
		}
		s.flushPlumtree(n)
	case Flood:
		s.flood(n, b, -1)
	case Gossip:
		s.gossipQueue(n, b)
	default:
		return 0, fmt.Errorf("sim: unknown protocol %d", uint8(p))
	}
	return int(b.id), nil
}

func bcastID(id int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(id)) }

func (s *Simulator) bcastOf(id []byte) *bcast {
	if len(id) != 4 {
		return nil
	}
	i := binary.BigEndian.Uint32(id)
	if int(i) >= len(s.bcasts) {
		return nil
	}
	return s.bcasts[i]
}

// deliver records that node i delivered b at hop; false if it had already.
func (s *Simulator) deliver(b *bcast, i int32, hop uint32) bool {
	if int(i) >= len(b.hops) {
		return false // started after the broadcast: not measured
	}
	if b.hops[i] != 0 {
		return false
	}
	b.hops[i] = uint8(min(hop, 254) + 1)
	b.last = s.now
	return true
}

func (s *Simulator) delivered(b *bcast, i int32) bool {
	return int(i) < len(b.hops) && b.hops[i] != 0
}

// forgetDeliveries clears what node i delivered: a restarted process
// remembers nothing.
func (s *Simulator) forgetDeliveries(i int32) {
	for _, b := range s.bcasts {
		if int(i) < len(b.hops) {
			b.hops[i] = 0
		}
	}
}

// Result measures broadcast id now.
func (s *Simulator) Result(id int) BroadcastResult {
	b := s.bcasts[id]
	r := BroadcastResult{
		ID: id, Protocol: b.proto, Source: int(b.source), At: b.at,
		PayloadMessages: b.payloadMsgs, ShortestDepth: b.depth, Latency: b.last - b.at,
	}
	for i, h := range b.hops {
		n := s.nodes[i]
		if !n.alive || n.born > b.at {
			continue
		}
		r.Eligible++
		if h != 0 {
			r.Delivered++
			r.LDH = max(r.LDH, int(h)-1)
		}
	}
	if r.Eligible > 0 {
		r.Reliability = float64(r.Delivered) / float64(r.Eligible)
	}
	if r.Delivered > 1 {
		r.RMR = float64(r.PayloadMessages)/float64(r.Delivered-1) - 1
	}
	return r
}

// probe is the Handler of the measured topic on every node: it records
// deliveries and their hop count, and is the dedupe oracle (a node knows
// what it delivered).
type probe struct {
	s    *Simulator
	node int32
}

func (p *probe) Merge(_ string, id, _ []byte) (plumtree.Verdict, []plumtree.Action) {
	b := p.s.bcastOf(id)
	if b == nil {
		return plumtree.Duplicate, nil
	}
	var round uint32
	if m := p.s.incoming; m != nil {
		round = m.Round
	}
	if !p.s.deliver(b, p.node, round) {
		return plumtree.Duplicate, nil
	}
	return plumtree.New, nil
}

func (p *probe) IsStale(id []byte) bool {
	b := p.s.bcastOf(id)
	return b == nil || p.s.delivered(b, p.node)
}

func (p *probe) Graft(id []byte) ([]byte, bool) {
	b := p.s.bcastOf(id)
	if b == nil || !p.s.delivered(b, p.node) {
		return nil, false
	}
	return p.s.payload, true
}

func (p *probe) ExchangeStart(string) []byte { return nil }
func (p *probe) ExchangeReceive(plumtree.Exchange, []byte) ([]byte, []plumtree.Action) {
	return nil, nil
}

// TreeUpkeep counts the Plumtree messages that shape the trees rather than
// carry payloads, summed over the running nodes: what building, repairing
// and optimising the trees costs.
type TreeUpkeep struct {
	IHaves, Grafts, Prunes uint64 // messages sent
	// Optimizations counts eager links swapped for shorter ones (each sends
	// a graft and a prune).
	Optimizations uint64
}

func (s *Simulator) treeUpkeep() TreeUpkeep {
	var u TreeUpkeep
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		st := n.pt.Stats()
		u.IHaves += st.Sent[plumtree.MsgIHave]
		u.Grafts += st.Sent[plumtree.MsgGraft]
		u.Prunes += st.Sent[plumtree.MsgPrune]
		u.Optimizations += st.Optimizations
	}
	return u
}

func (u TreeUpkeep) since(before TreeUpkeep) TreeUpkeep {
	return TreeUpkeep{
		IHaves: u.IHaves - before.IHaves, Grafts: u.Grafts - before.Grafts,
		Prunes: u.Prunes - before.Prunes, Optimizations: u.Optimizations - before.Optimizations,
	}
}
