package sim

import (
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership/hyparview"
)

type eventKind uint8

const (
	evTick          eventKind = iota + 1 // every node's membership core ticks
	evBroadcastTick                      // every node's broadcast core ticks
	evGossipRound                        // every node with queued gossip sends it
	evHyParView                          // a HyParView message arrives
	evPlumtree                           // a Plumtree message arrives
	evFlood                              // a flooding peer's payload arrives
	evGossip                             // a memberlist-style gossip packet arrives
	evLinkFailed                         // a driver reports a lost link to its core
	evCall                               // a scheduled action of the scenario
	evMix                                // every node's mixing timer fires
)

// event is one entry of the simulator's agenda. Events run in (at, seq)
// order; seq is the order they were scheduled in, so ties are broken the
// same way in every run.
type event struct {
	at   time.Duration
	seq  uint64
	kind eventKind

	from, to       int32
	fromGen, toGen uint32
	transient      bool // HyParView: sent over a short-lived connection
	closed         bool // link failure: the peer closed the connection

	hv    hyparview.ProtocolMessage
	pt    *plumtree.Message
	bcast int32   // flood: the broadcast
	ids   []int32 // gossip: the broadcasts in the packet
	call  func()
}

// agenda is a binary min-heap of events keyed by (at, seq), written out
// rather than built on container/heap to keep interface calls off the
// simulator's hottest path; the keys sit in the heap's slots so that
// ordering never dereferences an event. Processed events are recycled.
type agenda struct {
	items []slot
	seq   uint64
	free  []*event
}

type slot struct {
	at  time.Duration
	seq uint64
	e   *event
}

func (a *agenda) len() int { return len(a.items) }

func (a *agenda) less(i, j int) bool {
	x, y := &a.items[i], &a.items[j]
	if x.at != y.at {
		return x.at < y.at
	}
	return x.seq < y.seq
}

// alloc returns a zeroed event, recycled when possible.
func (a *agenda) alloc() *event {
	if n := len(a.free); n > 0 {
		e := a.free[n-1]
		a.free = a.free[:n-1]
		return e
	}
	return new(event)
}

// maxFree bounds the recycled events kept: a burst of traffic should not
// pin its peak in memory for the rest of the run.
const maxFree = 1 << 16

// release recycles a processed event.
func (a *agenda) release(e *event) {
	if len(a.free) >= maxFree {
		return
	}
	*e = event{}
	a.free = append(a.free, e)
}

func (a *agenda) push(e *event) {
	a.seq++
	e.seq = a.seq
	a.items = append(a.items, slot{at: e.at, seq: e.seq, e: e})
	i := len(a.items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !a.less(i, parent) {
			break
		}
		a.items[i], a.items[parent] = a.items[parent], a.items[i]
		i = parent
	}
}

func (a *agenda) peek() *event { return a.items[0].e }

func (a *agenda) pop() *event {
	top := a.items[0].e
	last := len(a.items) - 1
	a.items[0] = a.items[last]
	a.items[last] = slot{}
	a.items = a.items[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && a.less(r, l) {
			m = r
		}
		if !a.less(m, i) {
			break
		}
		a.items[i], a.items[m] = a.items[m], a.items[i]
		i = m
	}
	return top
}
