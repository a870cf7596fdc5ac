package sim

import "github.com/cpggo/cpg/sim/memberlistpeer"

// memberlistQueue gives the tests' gossip peer memberlist's own queue.
func memberlistQueue(numNodes func() int, retransmitMult int) GossipQueue {
	return memberlistpeer.NewQueue(numNodes, retransmitMult)
}
