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
