package broadcast_test

import (
	"fmt"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership"
)

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
	seen, _ := plumtree.NewSeenSet(plumtree.SeenSetConfig{
		Deliver: func(id, payload []byte) { fmt.Printf("got %s\n", payload) },
	})
	if err := node.Register("chat", seen); err != nil {
		panic(err)
	}
	if err := node.Broadcast("chat", []byte("n1-1"), []byte("hello")); err != nil {
		panic(err)
	}
}
