package sim

import (
	"encoding/binary"
	"errors"
)

// GossipQueue is one node's queue of the memberlist-style gossip peer,
// shaped after memberlist.TransmitLimitedQueue: it hands out each queued
// message a limited number of times, most recent and least sent first.
type GossipQueue interface {
	// Queue adds a message.
	Queue(msg []byte)
	// Get returns the messages for one packet of at most limit bytes,
	// each costing overhead bytes more.
	Get(overhead, limit int) [][]byte
	// Len is the number of messages still queued.
	Len() int
}

var errNoGossipQueue = errors.New("sim: the gossip peer needs Config.Gossip.NewQueue (package sim/memberlistpeer provides memberlist's)")

// flood sends b from n to every active peer but the one it came from.
func (s *Simulator) flood(n *node, b *bcast, except int32) {
	for _, p := range n.links {
		if p != except {
			e := s.message(evFlood, n.idx, p)
			e.bcast = b.id
			s.send(e)
		}
	}
}

func (s *Simulator) deliverFlood(e *event) {
	if !s.reachable(e) {
		return
	}
	n := s.nodes[e.to]
	if !containsLink(n.links, e.from) {
		s.stats.Lost++
		return
	}
	s.stats.Messages++
	s.stats.Flood++
	b := s.bcasts[e.bcast]
	b.payloadMsgs++
	var hop uint32
	if int(e.from) < len(b.hops) && b.hops[e.from] != 0 {
		hop = uint32(b.hops[e.from]) // the sender's hop plus one
	}
	if s.deliver(b, e.to, hop) {
		s.flood(n, b, e.from)
	}
}

func containsLink(links []int32, p int32) bool {
	for _, l := range links {
		if l == p {
			return true
		}
	}
	return false
}

// gossipQueue is one node's queue of the gossip peer.
type gossipQueue struct {
	q GossipQueue
}

// gossipPacketLimit is memberlist's UDPBufferSize on a LAN, less its
// compound header.
const gossipPacketLimit = 1400 - 3

// gossipQueue queues b at node n for gossiping.
func (s *Simulator) gossipQueue(n *node, b *bcast) {
	if n.gossip == nil {
		n.gossip = &gossipQueue{q: s.cfg.Gossip.NewQueue(func() int { return s.live }, s.cfg.Gossip.RetransmitMult)}
	}
	if n.gossip.q.Len() == 0 {
		s.gossipLive++
	}
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(s.payload)), uint32(b.id))
	n.gossip.q.Queue(append(msg, s.payload...))
	if !s.gossipRounds {
		s.gossipRounds = true
		s.schedule(&event{at: s.now + s.cfg.Gossip.Interval, kind: evGossipRound})
	}
}

// gossipRound is one gossip interval of every node with something queued:
// as memberlist.gossip, pick Fanout random nodes (live ones, or dead for
// less than ToTheDead) and send each the broadcasts the queue hands out.
func (s *Simulator) gossipRound() {
	if s.gossipLive == 0 {
		s.gossipRounds = false
		return
	}
	for _, n := range s.nodes {
		if !n.alive || n.gossip == nil || n.gossip.q.Len() == 0 {
			continue
		}
		for _, target := range s.gossipTargets(n) {
			msgs := n.gossip.q.Get(2, gossipPacketLimit)
			if len(msgs) == 0 {
				break
			}
			ids := make([]int32, len(msgs))
			for k, m := range msgs {
				ids[k] = int32(binary.BigEndian.Uint32(m))
			}
			s.send(&event{kind: evGossip, from: n.idx, to: target, ids: ids})
		}
		if n.gossip.q.Len() == 0 {
			s.gossipLive--
		}
	}
	s.schedule(&event{at: s.now + s.cfg.Gossip.Interval, kind: evGossipRound})
}

// gossipTargets picks up to Fanout distinct random nodes other than n, as
// memberlist's kRandomNodes does (3n tries at most).
func (s *Simulator) gossipTargets(n *node) []int32 {
	k := s.cfg.Gossip.Fanout
	out := make([]int32, 0, k)
	for tries := 0; tries < 3*len(s.nodes) && len(out) < k; tries++ {
		c := int32(s.peerRng.IntN(len(s.nodes)))
		cand := s.nodes[c]
		if c == n.idx || containsLink(out, c) || (cand.gen == 0) {
			continue
		}
		if !cand.alive && s.now-cand.died > s.cfg.Gossip.ToTheDead {
			continue
		}
		out = append(out, c)
	}
	return out
}

func (s *Simulator) deliverGossip(e *event) {
	if !s.reachable(e) {
		return
	}
	s.stats.Messages++
	s.stats.Gossip++
	n := s.nodes[e.to]
	for _, id := range e.ids {
		b := s.bcasts[id]
		b.payloadMsgs++
		var hop uint32
		if int(e.from) < len(b.hops) && b.hops[e.from] != 0 {
			hop = uint32(b.hops[e.from])
		}
		if s.deliver(b, e.to, hop) {
			s.gossipQueue(n, b)
		}
	}
}
