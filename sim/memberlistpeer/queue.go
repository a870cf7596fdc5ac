// Package memberlistpeer gives the simulator memberlist's own broadcast
// queue, for its memberlist-style gossip peer: the simulator runs only the
// system's pure packages, so this driver-side dependency is plugged in
// from outside (sim.GossipConfig.NewQueue).
package memberlistpeer

import "github.com/hashicorp/memberlist"

// Queue is a memberlist.TransmitLimitedQueue: the very queue memberlist
// uses to piggyback broadcasts on its gossip, with its retransmit limit of
// RetransmitMult * ceil(log10(n+1)).
type Queue struct {
	q memberlist.TransmitLimitedQueue
}

// NewQueue returns an empty queue for a cluster of numNodes() nodes. Its
// signature is sim.GossipConfig.NewQueue's.
func NewQueue(numNodes func() int, retransmitMult int) *Queue {
	return &Queue{q: memberlist.TransmitLimitedQueue{NumNodes: numNodes, RetransmitMult: retransmitMult}}
}

// Queue adds a message; every message is distinct.
func (q *Queue) Queue(msg []byte) { q.q.QueueBroadcast(item(msg)) }

// Get returns the messages for one packet, as memberlist's gossip takes
// them.
func (q *Queue) Get(overhead, limit int) [][]byte { return q.q.GetBroadcasts(overhead, limit) }

// Len is the number of messages still queued.
func (q *Queue) Len() int { return q.q.NumQueued() }

// item is one queued message.
type item []byte

func (i item) Invalidates(memberlist.Broadcast) bool { return false }
func (i item) Message() []byte                       { return i }
func (i item) Finished()                             {}
func (i item) UniqueBroadcast()                      {}
