package membership_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cpggo/cpg/membership"
)

// Two nodes of one cluster: b joins through a's memberlist address, each
// sees the other's link come up, and a sends b a payload over the link.
func ExampleNode() {
	key := []byte("0123456789abcdef0123456789abcdef") // shared by every node of the cluster
	start := func(name string) *membership.Node {
		n, err := membership.Start(membership.NodeConfig{
			Name:       name,
			ClusterKey: key,
			Gossip:     membership.LoopbackGossipConfig(),
		})
		if err != nil {
			log.Fatal(err)
		}
		return n
	}
	a, b := start("a"), start("b")
	defer a.Close()
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		log.Fatal(err)
	}
	up := <-a.Events()
	fmt.Println("a:", up.Type, up.Peer.Name)
	up = <-b.Events()
	fmt.Println("b:", up.Type, up.Peer.Name)

	if err := a.Send("b", []byte("hello")); err != nil {
		log.Fatal(err)
	}
	msg := <-b.Events()
	fmt.Printf("b: %v from %s: %s\n", msg.Type, msg.Peer.Name, msg.Payload)
	// Output:
	// a: link-up b
	// b: link-up a
	// b: message from a: hello
}
