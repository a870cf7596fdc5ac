package membership

import "sync"

// eventQueue delivers the node's events, in order, to the single consumer of
// Node.Events. The node's loop must never block on a slow consumer, yet
// link events must never be lost, and payloads must not pile up without
// bound. So: link events always queue (there are few: at most a handful per
// membership change); a payload first takes one of a bounded number of
// slots, and a link's reader that cannot get a slot waits, which stops
// reading that TCP connection, which fills the sender's queue, which makes
// the sender drop the link. Backpressure ends in a replaced link, never in a
// stalled node.
type eventQueue struct {
	mu    sync.Mutex
	items []Event
	wake  chan struct{} // one pending wake-up for the pump
	slots chan struct{} // one token per queued or in-flight payload
	out   chan Event
}

func newEventQueue(maxPayloads int) *eventQueue {
	return &eventQueue{
		wake:  make(chan struct{}, 1),
		slots: make(chan struct{}, maxPayloads),
		out:   make(chan Event),
	}
}

// reserve takes a payload slot, waiting while all are taken; it gives up
// (false) when either stop channel closes.
func (q *eventQueue) reserve(stop1, stop2 <-chan struct{}) bool {
	select {
	case q.slots <- struct{}{}:
		return true
	case <-stop1:
		return false
	case <-stop2:
		return false
	}
}

// release returns a slot reserved for a payload that will not be queued.
func (q *eventQueue) release() { <-q.slots }

// push queues ev; a Message event must hold a reserved slot.
func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pump hands queued events to the consumer until done closes, then closes
// the consumer's channel.
func (q *eventQueue) pump(done <-chan struct{}) {
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.items = nil
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-done:
				return
			}
		}
		ev := q.items[0]
		q.items[0] = Event{}
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.out <- ev:
			if ev.Type == Message {
				q.release()
			}
		case <-done:
			return
		}
	}
}
