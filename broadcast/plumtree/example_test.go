package plumtree_test

import (
	"fmt"

	"github.com/cpggo/cpg/broadcast/plumtree"
)

// A Plumtree is driven by method calls and answers with values: here two
// nodes linked to each other, one broadcasting, and the caller carrying
// the messages between them as a driver would.
func ExampleProtocol() {
	deliver := func(node string) func(id, payload []byte) {
		return func(id, payload []byte) { fmt.Printf("%s delivers %s: %s\n", node, id, payload) }
	}
	nodes := map[string]*plumtree.Protocol{}
	for _, name := range []string{"a", "b"} {
		p, _ := plumtree.NewProtocol(plumtree.Config{Self: name})
		seen, _ := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: deliver(name)})
		p.Register("chat", seen)
		nodes[name] = p
	}
	nodes["a"].NeighborUp("b")
	nodes["b"].NeighborUp("a")

	nodes["a"].Broadcast("chat", []byte("a-1"), []byte("hello"))
	for _, env := range nodes["a"].Ready().Messages {
		fmt.Println("a ->", env.To, env.Msg)
		nodes[env.To].Step("a", env.Msg)
	}
	// Output:
	// a -> b GOSSIP chat/a-1 root=a round=1
	// b delivers a-1: hello
}

// The wire form of a message is a type byte and its fields; DecodeMessage
// refuses anything malformed.
func ExampleDecodeMessage() {
	b := plumtree.AppendMessage(nil, plumtree.Message{Type: plumtree.MsgPrune, Root: "n1"})
	m, err := plumtree.DecodeMessage(b)
	fmt.Println(m, err)
	_, err = plumtree.DecodeMessage(append(b, 0))
	fmt.Println(err)
	// Output:
	// PRUNE root=n1 <nil>
	// plumtree: decode PRUNE: wire: 1 trailing bytes
}

// A replica passes on, on the owner's tree, state it learned by other
// means: BroadcastOn with the owner as root. The relayed copy carries
// RoundUnknown, so it never reshapes the owner's tree.
func ExampleProtocol_BroadcastOn() {
	nodes := map[string]*plumtree.Protocol{}
	for _, name := range []string{"owner", "replica", "far"} {
		p, _ := plumtree.NewProtocol(plumtree.Config{Self: name})
		seen, _ := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: func(id, _ []byte) {
			fmt.Printf("%s delivers %s\n", name, id)
		}})
		p.Register("state", seen)
		nodes[name] = p
	}
	link := func(x, y string) { nodes[x].NeighborUp(y); nodes[y].NeighborUp(x) }
	link("owner", "replica")
	link("replica", "far")

	nodes["replica"].BroadcastOn("state", "owner", []byte("owner@7"), []byte("state of owner"))
	for _, env := range nodes["replica"].Ready().Messages {
		fmt.Println("replica ->", env.To, env.Msg)
		nodes[env.To].Step("replica", env.Msg)
	}
	// Output:
	// replica -> far GOSSIP state/owner@7 root=owner round=0
	// far delivers owner@7
	// replica -> owner GOSSIP state/owner@7 root=owner round=0
	// owner delivers owner@7
}

// gapHandler holds ops numbered 1, 2, 3...; an op that arrives after a gap
// is kept and answered with an action: an exchange with its sender at once.
type gapHandler struct{ next int }

func (h *gapHandler) Merge(from string, id, _ []byte) (plumtree.Verdict, []plumtree.Action) {
	var n int
	fmt.Sscanf(string(id), "op%d", &n)
	switch {
	case n < h.next:
		return plumtree.Duplicate, nil
	case n > h.next:
		fmt.Printf("gap before %s: pull from %s\n", id, from)
		return plumtree.New, []plumtree.Action{{Kind: plumtree.ActExchange, Peer: from}}
	}
	h.next++
	return plumtree.New, nil
}
func (h *gapHandler) IsStale(id []byte) bool      { return false }
func (h *gapHandler) Graft([]byte) ([]byte, bool) { return nil, false }
func (h *gapHandler) ExchangeStart(peer string) []byte {
	return fmt.Appendf(nil, "have up to op%d", h.next-1)
}
func (h *gapHandler) ExchangeReceive(plumtree.Exchange, []byte) ([]byte, []plumtree.Action) {
	return nil, nil
}

// Handlers never call the protocol: they return actions, carried out once
// they return. Here an op that reveals a gap opens an exchange at once.
func ExampleAction() {
	p, _ := plumtree.NewProtocol(plumtree.Config{Self: "b"})
	p.Register("ops", &gapHandler{next: 1})
	p.NeighborUp("a") // "a" sorts first: a opens this link's exchange
	p.Step("a", plumtree.Message{Type: plumtree.MsgGossip, Topic: "ops", ID: []byte("op3"), Root: "a", Round: 1})
	for _, env := range p.Ready().Messages {
		fmt.Println("b ->", env.To, env.Msg)
	}
	// Output:
	// gap before op3: pull from a
	// b -> a EXCHANGE ops id=1 step=0 "have up to op0"
}
