package broadcast_test

import (
	"fmt"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/membership"
)

// A Plumtree is driven by method calls and answers with values: here two
// nodes linked to each other, one broadcasting, and the caller carrying
// the messages between them as a driver would.
func ExamplePlumtree() {
	deliver := func(node string) func(id, payload []byte) {
		return func(id, payload []byte) { fmt.Printf("%s delivers %s: %s\n", node, id, payload) }
	}
	nodes := map[string]*broadcast.Plumtree{}
	for _, name := range []string{"a", "b"} {
		p, _ := broadcast.New(broadcast.Config{Self: name})
		seen, _ := broadcast.NewSeenSet(broadcast.SeenSetConfig{Deliver: deliver(name)})
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

// Start runs a Plumtree over the overlay. Register a handler per topic on
// every node, then Broadcast. (Not run: it needs a cluster to join.)
func ExampleStart() {
	overlay, err := membership.Start(membership.NodeConfig{Name: "n1"})
	if err != nil {
		panic(err)
	}
	defer overlay.Close()
	node, err := broadcast.Start(overlay, broadcast.Options{})
	if err != nil {
		panic(err)
	}
	defer node.Close()
	seen, _ := broadcast.NewSeenSet(broadcast.SeenSetConfig{
		Deliver: func(id, payload []byte) { fmt.Printf("got %s\n", payload) },
	})
	if err := node.Register("chat", seen); err != nil {
		panic(err)
	}
	if err := node.Broadcast("chat", []byte("n1-1"), []byte("hello")); err != nil {
		panic(err)
	}
}

// The wire form of a message is a type byte and its fields; DecodeMessage
// refuses anything malformed.
func ExampleDecodeMessage() {
	b := broadcast.AppendMessage(nil, broadcast.Message{Type: broadcast.MsgPrune, Root: "n1"})
	m, err := broadcast.DecodeMessage(b)
	fmt.Println(m, err)
	_, err = broadcast.DecodeMessage(append(b, 0))
	fmt.Println(err)
	// Output:
	// PRUNE root=n1 <nil>
	// broadcast: decode PRUNE: wire: 1 trailing bytes
}
