package hyparview_test

import (
	"fmt"
	"math/rand"

	"github.com/cpggo/cpg/membership/hyparview"
)

// Two cores joined by hand: the caller plays the network, delivering each
// message Ready returns to the core it is addressed to. A driver does the
// same over TCP, and a simulator over a simulated network.
func ExampleProtocol() {
	cores := map[string]*hyparview.Protocol{}
	for i, name := range []string{"a", "b"} {
		cores[name] = hyparview.New(hyparview.Peer{Name: name}, hyparview.DefaultConfig(), rand.New(rand.NewSource(int64(i))))
	}
	cores["b"].Join(hyparview.Peer{Name: "a"})

	// Deliver until no core has anything left to say.
	for busy := true; busy; {
		busy = false
		for _, from := range []string{"a", "b"} {
			rd := cores[from].Ready()
			for _, d := range rd.Down {
				fmt.Printf("%s: link to %s down (%s)\n", from, d.Peer.Name, d.Reason)
			}
			for _, p := range rd.Up {
				fmt.Printf("%s: link to %s up\n", from, p.Name)
			}
			for _, env := range rd.Messages {
				fmt.Printf("%s -> %s: %v\n", from, env.To.Name, env.Msg)
				cores[env.To.Name].Step(cores[from].Self(), env.Msg)
				busy = true
			}
		}
	}
	fmt.Println("a active:", cores["a"].Active())
	fmt.Println("b active:", cores["b"].Active())
	// Output:
	// b -> a: JOIN epoch=1
	// a: link to b up
	// a -> b: NEIGHBOR_REPLY accept epoch=1 link=2
	// b: link to a up
	// a active: [b]
	// b active: [a]
}

// The driver frames messages with EncodeMessage and parses them back with
// DecodeMessage; a malformed body is an error, never a panic.
func ExampleEncodeMessage() {
	typ, body := hyparview.EncodeMessage(hyparview.MsgForwardJoin{
		Joiner: hyparview.Peer{Name: "n7", Addr: "10.0.0.7:7400"},
		TTL:    6,
	})
	m, err := hyparview.DecodeMessage(typ, body)
	fmt.Println(typ, m, err)

	_, err = hyparview.DecodeMessage(typ, body[:len(body)-1])
	fmt.Println(err)
	// Output:
	// 2 FORWARD_JOIN joiner=n7@10.0.0.7:7400 ttl=6 <nil>
	// membership: decode message type 2: wire: truncated message
}
