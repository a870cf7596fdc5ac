package registry

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Record is one change of a scope as its journal keeps it: the event and
// its sequence number. Sequence numbers grow by one with every change the
// node applies, in any scope, so a number also says "everything after this
// moment" to a journal of another scope. A Record is shared by every reader
// of the journal and never modified.
type Record struct {
	Seq uint64
	Event

	encoded atomic.Pointer[[]byte]
}

// Encoded returns encode(r), computing it once for all the record's
// readers: a thousand watchers of one group cost one encoding per change.
// Every caller must pass an equivalent encode function (the first one to
// run wins).
func (r *Record) Encoded(encode func(*Record) []byte) []byte {
	if b := r.encoded.Load(); b != nil {
		return *b
	}
	b := encode(r)
	if r.encoded.CompareAndSwap(nil, &b) {
		return b
	}
	return *r.encoded.Load()
}

// journal is a scope's recent changes in a bounded ring, shared by every
// subscription to the scope. A change is appended once, whatever the
// number of subscriptions; each subscription keeps its own cursor and
// copies out what it has not read yet. A subscription whose unread
// matching records were pushed out of the ring has overflowed.
//
// Appends run with Node.mu held; mu guards the ring and the wait sets so
// that readers never take Node.mu.
type journal struct {
	mu     sync.Mutex
	ring   []*Record // grows up to size, then wraps
	size   int
	oldest int // index in ring of the oldest record
	// floor: every change of the scope with a sequence number above floor
	// is in the ring (or not made yet). It starts at the node's sequence
	// number when the journal is created and moves up as records fall out.
	floor uint64
	// last is the node's sequence number at the last append; written
	// under mu, read without it by readers that check for news.
	last   atomic.Uint64
	closed bool

	// Subscriptions with the same filter share a wait set: an append looks
	// at each distinct filter once, not at each subscription.
	exact map[string]*waitSet // filters without wildcards, by name
	// patterns are the filters with wildcards: every append tries each,
	// and a slice is walked several times faster than a map.
	patterns []*waitSet
}

// waitSet is the subscriptions of one filter: woken together when a
// matching record arrives.
type waitSet struct {
	filter string
	subs   int
	// wake is closed (and replaced) by the first matching append after a
	// subscriber armed it; an append no one waits for allocates nothing.
	wake  chan struct{}
	armed bool
	// lost is the sequence number of the newest matching record that fell
	// out of the ring: a subscription whose cursor is below it missed it.
	lost uint64
}

func newJournal(size int, floor uint64) *journal {
	j := &journal{
		size: size, floor: floor,
		exact: make(map[string]*waitSet),
	}
	j.last.Store(floor)
	return j
}

// closedChan is what Ready returns when there is something to read now.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// append adds a record and wakes the subscriptions whose filter it
// matches; Node.mu is held, so records arrive in the node's order.
func (j *journal) append(r *Record) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.appendLocked(r)
}

// appendAll appends the records of a merged batch under one lock.
func (j *journal) appendAll(held []heldRecord) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, h := range held {
		j.appendLocked(h.r)
	}
}

func (j *journal) appendLocked(r *Record) {
	if len(j.ring) < j.size {
		j.ring = append(j.ring, r)
	} else {
		evicted := j.ring[j.oldest]
		j.ring[j.oldest] = r
		j.oldest = (j.oldest + 1) % j.size
		j.floor = evicted.Seq
		j.forEachMatching(evicted.Group, func(ws *waitSet) { ws.lost = evicted.Seq })
	}
	j.last.Store(r.Seq)
	j.forEachMatching(r.Group, (*waitSet).signal)
}

// forEachMatching calls f for every wait set whose filter selects the
// group; j.mu is held.
func (j *journal) forEachMatching(group string, f func(*waitSet)) {
	if ws := j.exact[group]; ws != nil {
		f(ws)
	}
	for _, ws := range j.patterns {
		if watchMatches(ws.filter, group) {
			f(ws)
		}
	}
}

func (ws *waitSet) signal() {
	if ws.armed {
		close(ws.wake)
		ws.wake = make(chan struct{})
		ws.armed = false
	}
}

// close ends the journal: subscriptions read what is left, then end.
func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	for _, ws := range j.exact {
		ws.signal()
	}
	for _, ws := range j.patterns {
		ws.signal()
	}
}

// join registers a subscription of filter; j.mu is held.
func (j *journal) join(filter string) *waitSet {
	var ws *waitSet
	if isPattern(filter) {
		if i := slices.IndexFunc(j.patterns, func(p *waitSet) bool { return p.filter == filter }); i >= 0 {
			ws = j.patterns[i]
		} else {
			ws = &waitSet{filter: filter, wake: make(chan struct{})}
			j.patterns = append(j.patterns, ws)
		}
	} else if ws = j.exact[filter]; ws == nil {
		ws = &waitSet{filter: filter, wake: make(chan struct{})}
		j.exact[filter] = ws
	}
	ws.subs++
	return ws
}

// leave unregisters a subscription; j.mu is held.
func (j *journal) leave(ws *waitSet) {
	ws.subs--
	if ws.subs > 0 {
		return
	}
	if isPattern(ws.filter) {
		j.patterns = slices.DeleteFunc(j.patterns, func(p *waitSet) bool { return p == ws })
	} else {
		delete(j.exact, ws.filter)
	}
}

// at returns the record with sequence number above after that comes first
// in the ring, as an index from the oldest, or len(ring) if none; j.mu is
// held. Records' numbers grow along the ring, so this is a binary search.
func (j *journal) at(after uint64) int {
	lo, hi := 0, len(j.ring)
	for lo < hi {
		mid := (lo + hi) / 2
		if j.ring[(j.oldest+mid)%len(j.ring)].Seq <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
