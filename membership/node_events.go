package membership

import (
	"sync"
	"sync/atomic"
)

// eventQueue delivers the node's events to the single consumer of
// Node.Events. The node's loop must never block on a slow consumer, and
// nothing queued is ever dropped, so the queue's size is bounded by what
// is put in, not by dropping:
//
//   - Payloads hold their link's credit (flow.go) until the consumer takes
//     them: a link has at most its window of payload bytes here, and a
//     slow consumer holds back its peers' senders, never its own readers.
//   - Link events are per peer, and a link-up still queued when its
//     link-down arrives cancels out with it (the consumer never learns of a
//     link it never saw carry anything): per peer, at most one link-down
//     and one link-up wait besides the link-ups and link-downs that
//     bracket queued payloads.
//
// Events are ordered per peer (a payload always comes between its peer's
// link-up and link-down). Across peers, link events go first: a link-down
// or link-up waits behind its own peer's payloads only, never behind
// another link's backlog, so a consumer catching up learns of the
// overlay's changes at once.
type eventQueue struct {
	mu      sync.Mutex
	pending map[string]*peerEvents // by peer name; never empty
	// linked holds the peers whose last link event queued is a LinkUp:
	// a payload queued for another would reach the consumer outside its
	// link's LinkUp and LinkDown.
	linked map[string]bool
	// resetDue holds the peers whose LinkUp marked Reset was cancelled
	// by a LinkDown before the consumer took it: their next LinkUp is
	// marked Reset instead, since what the reset link lost is still lost.
	resetDue map[string]bool
	seq      uint64        // orders events across peers
	wake     chan struct{} // one pending wake-up for the consumer
	out      chan Event
	// chosen closes when the consumer picks how it takes events: the
	// channel (Node.Events, through the pump) or polling (Node.NextEvent).
	chosen     chan struct{}
	chooseOnce sync.Once
	polled     bool // set before chosen closes
	// turn, when set, is a polling consumer's inline turn (see
	// Node.ConsumeInline).
	turn atomic.Pointer[func() bool]
}

// peerEvents is one peer's queue: a slice consumed from head, compacted
// when half of it is consumed, so that neither end costs more than
// amortised O(1) however long the backlog.
type peerEvents struct {
	items []queuedEvent
	head  int
}

func (p *peerEvents) len() int { return len(p.items) - p.head }

func (p *peerEvents) first() *queuedEvent { return &p.items[p.head] }

func (p *peerEvents) last() *queuedEvent { return &p.items[len(p.items)-1] }

func (p *peerEvents) popFirst() queuedEvent {
	e := p.items[p.head]
	p.items[p.head] = queuedEvent{}
	p.head++
	if p.head > len(p.items)/2 {
		n := copy(p.items, p.items[p.head:])
		clear(p.items[n:])
		p.items = p.items[:n]
		p.head = 0
	}
	return e
}

func (p *peerEvents) popLast() {
	p.items[len(p.items)-1] = queuedEvent{}
	p.items = p.items[:len(p.items)-1]
}

func (p *peerEvents) pushFirst(e queuedEvent) {
	if p.head > 0 {
		p.head--
		p.items[p.head] = e
		return
	}
	p.items = append([]queuedEvent{e}, p.items...)
}

type queuedEvent struct {
	ev   Event
	seq  uint64
	flow *flowControl // a Message's link: its credit goes back when taken
}

func newEventQueue() *eventQueue {
	return &eventQueue{
		pending:  make(map[string]*peerEvents),
		linked:   make(map[string]bool),
		resetDue: make(map[string]bool),
		wake:     make(chan struct{}, 1),
		out:      make(chan Event),
		chosen:   make(chan struct{}),
	}
}

// pushLink queues a LinkUp or LinkDown.
func (q *eventQueue) pushLink(ev Event) {
	q.mu.Lock()
	name := ev.Peer.Name
	if ev.Type == LinkUp {
		q.linked[name] = true
		if q.resetDue[name] {
			ev.Reset = true
			delete(q.resetDue, name)
		}
	} else {
		delete(q.linked, name)
	}
	if queue := q.pending[name]; ev.Type == LinkDown && queue != nil && queue.last().ev.Type == LinkUp {
		if queue.last().ev.Reset {
			q.resetDue[name] = true
		}
		queue.popLast()
		q.dropIfEmpty(name, queue)
		q.mu.Unlock()
		return
	}
	q.appendLocked(queuedEvent{ev: ev})
	q.mu.Unlock()
	q.notify()
}

// pushPayload queues a Message holding one credit of flow.
func (q *eventQueue) pushPayload(ev Event, flow *flowControl) {
	q.mu.Lock()
	q.appendLocked(queuedEvent{ev: ev, flow: flow})
	q.mu.Unlock()
	q.notify()
}

// pushPayloadIfLinked queues a Message holding one credit of flow if the
// last link event queued for its peer is a LinkUp; false, and nothing
// queued, otherwise. Checked and queued under one lock, so a LinkDown
// queued concurrently goes either after the payload or before the check.
func (q *eventQueue) pushPayloadIfLinked(ev Event, flow *flowControl) bool {
	q.mu.Lock()
	if !q.linked[ev.Peer.Name] {
		q.mu.Unlock()
		return false
	}
	q.appendLocked(queuedEvent{ev: ev, flow: flow})
	q.mu.Unlock()
	if turn := q.turn.Load(); turn == nil || !(*turn)() {
		q.notify()
	}
	return true
}

func (q *eventQueue) appendLocked(e queuedEvent) {
	q.seq++
	e.seq = q.seq
	queue := q.pending[e.ev.Peer.Name]
	if queue == nil {
		queue = &peerEvents{}
		q.pending[e.ev.Peer.Name] = queue
	}
	queue.items = append(queue.items, e)
}

func (q *eventQueue) dropIfEmpty(name string, queue *peerEvents) {
	if queue.len() == 0 {
		delete(q.pending, name)
	}
}

func (q *eventQueue) notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the next event to deliver: the oldest link event at the head
// of a peer's queue, else the oldest payload.
func (q *eventQueue) pop() (queuedEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	best, bestIsLink := "", false
	var bestSeq uint64
	for name, queue := range q.pending {
		head := queue.first()
		isLink := head.ev.Type != Message
		if best == "" || (isLink && !bestIsLink) || (isLink == bestIsLink && head.seq < bestSeq) {
			best, bestIsLink, bestSeq = name, isLink, head.seq
		}
	}
	if best == "" {
		return queuedEvent{}, false
	}
	queue := q.pending[best]
	head := queue.popFirst()
	q.dropIfEmpty(best, queue)
	return head, true
}

// unpop puts back an event pop took, at the head of its peer's queue.
func (q *eventQueue) unpop(e queuedEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	queue := q.pending[e.ev.Peer.Name]
	if queue == nil {
		queue = &peerEvents{}
		q.pending[e.ev.Peer.Name] = queue
	}
	queue.pushFirst(e)
}

// len is the number of events queued, for tests.
func (q *eventQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, queue := range q.pending {
		n += queue.len()
	}
	return n
}

// channel is the consumer's channel, fed by the pump; taking it chooses
// the channel over polling.
func (q *eventQueue) channel() <-chan Event {
	q.chooseOnce.Do(func() { close(q.chosen) })
	return q.out
}

// poll takes the next event without waiting, its credit returned: the
// consumer that calls it has chosen polling over the channel, and the
// pump hands nothing out. The wake channel signals that events may be
// waiting.
func (q *eventQueue) poll() (Event, bool) {
	q.chooseOnce.Do(func() {
		q.polled = true
		close(q.chosen)
	})
	if !q.polled {
		return Event{}, false // the channel was chosen first
	}
	e, ok := q.pop()
	if !ok {
		return Event{}, false
	}
	if e.flow != nil {
		e.flow.release(payloadCost(len(e.ev.Payload) + 1))
	}
	return e.ev, true
}

// pump hands queued events to the consumer's channel, if the consumer
// chose it, until done closes, then closes the channel.
func (q *eventQueue) pump(done <-chan struct{}) {
	defer close(q.out)
	select {
	case <-q.chosen:
	case <-done:
		return
	}
	if q.polled {
		<-done
		return
	}
	for {
		e, ok := q.pop()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-done:
				return
			}
		}
		if !q.deliver(e, done) {
			return
		}
	}
}

// deliver hands e to the consumer, unless a link event arrives meanwhile
// that should go before it (e is then put back); false when done closes.
func (q *eventQueue) deliver(e queuedEvent, done <-chan struct{}) bool {
	for {
		select {
		case q.out <- e.ev:
			if e.flow != nil {
				e.flow.release(payloadCost(len(e.ev.Payload) + 1))
			}
			return true
		case <-q.wake:
			if e.ev.Type == Message && q.linkEventWaiting() {
				q.unpop(e)
				return true
			}
		case <-done:
			return false
		}
	}
}

// linkEventWaiting reports whether some peer's next event is a link event.
func (q *eventQueue) linkEventWaiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, queue := range q.pending {
		if queue.first().ev.Type != Message {
			return true
		}
	}
	return false
}

// NextEvent takes the next event without waiting, for a consumer that runs
// a loop of its own: the events and their order are those Events
// delivers, with no goroutine between the link's reader and the consumer.
// A consumer uses either NextEvent or Events, not both: whichever is
// called first is how events come, and NextEvent reports nothing once
// Events was taken. Call it until it reports false after each signal of
// EventsWaiting.
func (n *Node) NextEvent() (Event, bool) { return n.events.poll() }

// ConsumeInline lets a consumer that polls (NextEvent) take the payloads
// a link's reader queues in that reader's goroutine: after queuing one,
// the reader calls turn, which takes what is waiting if it can without
// waiting for anything and reports whether it left nothing for the
// consumer's own loop; if not, EventsWaiting is signalled as usual. Each
// payload then reaches the consumer with no goroutine hand-off at all,
// and, on a loaded machine, without waking a thread for it. turn runs
// while the reader reads nothing more from its link, so it must be short
// and must not wait on the consumer's loop.
func (n *Node) ConsumeInline(turn func() bool) {
	if turn == nil {
		n.events.turn.Store(nil)
		return
	}
	n.events.turn.Store(&turn)
}

// EventsWaiting signals that events may be waiting for NextEvent. A signal
// stands for every event queued before it was received, so a consumer
// that takes events until NextEvent reports false misses none.
func (n *Node) EventsWaiting() <-chan struct{} { return n.events.wake }
