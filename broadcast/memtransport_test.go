package broadcast

import (
	"fmt"
	"sync"

	"github.com/cpggo/cpg/membership"
)

// memNet is an in-memory overlay: links are set by the test, and each node
// has a buffered event channel, as membership.Node has.
type memNet struct {
	mu    sync.Mutex
	nodes map[string]*memNode
}

type memNode struct {
	net    *memNet
	self   membership.Peer
	events chan membership.Event
	active map[string]bool // guarded by net.mu
}

func newMemNet() *memNet { return &memNet{nodes: map[string]*memNode{}} }

func (n *memNet) add(name string) *memNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := &memNode{net: n, self: membership.Peer{Name: name}, events: make(chan membership.Event, 1<<16), active: map[string]bool{}}
	n.nodes[name] = m
	return m
}

func (n *memNet) link(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	na, nb := n.nodes[a], n.nodes[b]
	na.active[b], nb.active[a] = true, true
	na.events <- membership.Event{Type: membership.LinkUp, Peer: nb.self}
	nb.events <- membership.Event{Type: membership.LinkUp, Peer: na.self}
}

// reset tells only at that its link to peer was replaced by another that
// may not carry what the old one held (membership's LinkDown, then a
// LinkUp marked Reset); peer hears of nothing, as when its end of the old
// link recovered.
func (n *memNet) reset(at, peer string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.nodes[peer].self
	n.nodes[at].events <- membership.Event{Type: membership.LinkDown, Peer: p, Reason: "link stalled, replaced by a new connection"}
	n.nodes[at].events <- membership.Event{Type: membership.LinkUp, Peer: p, Reset: true}
}

// isolate cuts every link of a node, as its crash would.
func (n *memNet) isolate(a string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	na := n.nodes[a]
	for b := range na.active {
		nb := n.nodes[b]
		delete(na.active, b)
		delete(nb.active, a)
		nb.events <- membership.Event{Type: membership.LinkDown, Peer: na.self, Reason: "crash"}
	}
}

func (m *memNode) Events() <-chan membership.Event { return m.events }
func (m *memNode) Self() membership.Peer           { return m.self }

func (m *memNode) Active() []membership.Peer {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	var ps []membership.Peer
	for name := range m.active {
		ps = append(ps, membership.Peer{Name: name})
	}
	return ps
}

func (m *memNode) Send(peer string, payload []byte) error {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	if !m.active[peer] {
		return fmt.Errorf("%s: %s is not an active peer", m.self.Name, peer)
	}
	select {
	case m.net.nodes[peer].events <- membership.Event{Type: membership.Message, Peer: m.self, Payload: payload}:
		return nil
	default:
		return fmt.Errorf("%s: queue to %s is full", m.self.Name, peer)
	}
}
