package membership

import (
	"slices"
	"testing"
	"time"
)

func drainQueue(q *eventQueue) []Event {
	var out []Event
	for {
		e, ok := q.pop()
		if !ok {
			return out
		}
		if e.flow != nil {
			e.flow.release(payloadCost(len(e.ev.Payload) + 1))
		}
		out = append(out, e.ev)
	}
}

func describeEvents(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type.String() + " " + ev.Peer.Name
		if ev.Type == Message {
			out[i] += " " + string(ev.Payload)
		}
	}
	return out
}

func TestEventQueueOrder(t *testing.T) {
	q := newEventQueue()
	flow := newFlowControl(8)
	msg := func(peer, body string) {
		q.pushPayload(Event{Type: Message, Peer: Peer{Name: peer}, Payload: []byte(body)}, flow)
	}
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "b"}})
	msg("b", "1")
	msg("b", "2")
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "c"}})
	msg("c", "3")
	msg("b", "4")
	q.pushLink(Event{Type: LinkDown, Peer: Peer{Name: "b"}})
	q.pushLink(Event{Type: LinkDown, Peer: Peer{Name: "d"}})
	got := describeEvents(drainQueue(q))
	// Link events at a peer's head go first; a peer's own events keep
	// their order; payloads go oldest first.
	want := []string{
		"link-up b", "link-up c", "link-down d",
		"message b 1", "message b 2", "message c 3", "message b 4",
		"link-down b",
	}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestEventQueueCancelsUnseenLinks: a link that comes and goes before the
// consumer hears of it is never reported, so a flapping peer queues at
// most a link-down and a link-up whatever the number of flaps.
func TestEventQueueCancelsUnseenLinks(t *testing.T) {
	q := newEventQueue()
	q.pushLink(Event{Type: LinkDown, Peer: Peer{Name: "b"}})
	for range 1000 {
		q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "b"}})
		q.pushLink(Event{Type: LinkDown, Peer: Peer{Name: "b"}})
	}
	if n := q.len(); n != 1 {
		t.Fatalf("%d events queued after 1,000 flaps, want 1", n)
	}
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "b"}})
	if got := describeEvents(drainQueue(q)); len(got) != 2 || got[0] != "link-down b" || got[1] != "link-up b" {
		t.Fatalf("got %q", got)
	}
	// A link that carried a payload is reported, payload and all.
	flow := newFlowControl(8)
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "c"}})
	q.pushPayload(Event{Type: Message, Peer: Peer{Name: "c"}, Payload: []byte("x")}, flow)
	q.pushLink(Event{Type: LinkDown, Peer: Peer{Name: "c"}})
	if n := q.len(); n != 3 {
		t.Fatalf("%d events queued for a link that carried a payload, want 3", n)
	}
}

// TestEventQueueReleasesCreditOnDelivery: the pump hands a payload's
// credit back only once the consumer took it.
func TestEventQueueReleasesCreditOnDelivery(t *testing.T) {
	q := newEventQueue()
	done := make(chan struct{})
	defer close(done)
	go q.pump(done)
	payload := []byte("four")
	cost := payloadCost(len(payload) + 1)
	flow := newFlowControl(int(4 * cost))
	for range 4 {
		if err := flow.received(cost); err != nil {
			t.Fatal(err)
		}
		q.pushPayload(Event{Type: Message, Peer: Peer{Name: "b"}, Payload: payload}, flow)
	}
	if err := flow.received(cost); err == nil {
		t.Fatal("a fifth payload fit in a window of four")
	}
	if _, ok := flow.takeGrant(); ok {
		t.Fatal("credit granted before the consumer took anything")
	}
	events := q.channel()
	for range 4 {
		<-events
	}
	var granted uint64
	for granted < uint64(4*cost) {
		frame, ok := flow.takeGrant()
		if !ok {
			<-flow.wake
			continue
		}
		n, err := decodeCredit(frame[5:])
		if err != nil {
			t.Fatal(err)
		}
		granted += n
	}
	if granted != uint64(4*cost) {
		t.Fatalf("granted %d bytes of credit for 4 payloads of %d taken", granted, cost)
	}
}

// TestReaderQueuesPayloadsOnlyWhileLinked: a link's reader queues a
// payload itself only between its peer's LinkUp and LinkDown as queued for
// the consumer; otherwise it must go through the node's loop, which knows
// whether the peer is still active.
func TestReaderQueuesPayloadsOnlyWhileLinked(t *testing.T) {
	q := newEventQueue()
	flow := newFlowControl(1 << 10)
	payload := func() Event { return Event{Type: Message, Peer: Peer{Name: "b"}, Payload: []byte("x")} }
	if q.pushPayloadIfLinked(payload(), flow) {
		t.Fatal("a payload was queued before its peer's LinkUp")
	}
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "b"}})
	if !q.pushPayloadIfLinked(payload(), flow) {
		t.Fatal("a payload was refused after its peer's LinkUp")
	}
	q.pushLink(Event{Type: LinkDown, Peer: Peer{Name: "b"}})
	if q.pushPayloadIfLinked(payload(), flow) {
		t.Fatal("a payload was queued after its peer's LinkDown")
	}
	// A LinkUp cancelled by its LinkDown before the consumer saw it leaves
	// the peer unlinked too.
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "c"}})
	q.pushLink(Event{Type: LinkDown, Peer: Peer{Name: "c"}})
	if q.pushPayloadIfLinked(Event{Type: Message, Peer: Peer{Name: "c"}}, flow) {
		t.Fatal("a payload was queued for a link whose LinkUp was cancelled")
	}
	got := describeEvents(drainQueue(q))
	want := []string{"link-up b", "message b x", "link-down b"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestPollingTakesEventsInOrderAndReturnsCredit: a consumer that polls
// gets the events the channel would carry, in the same order, each
// payload's credit back as it takes it, and the pump hands out nothing.
func TestPollingTakesEventsInOrderAndReturnsCredit(t *testing.T) {
	q := newEventQueue()
	done := make(chan struct{})
	pumped := make(chan struct{})
	go func() { q.pump(done); close(pumped) }()
	cost := payloadCost(len("x") + 1)
	flow := newFlowControl(int(2 * cost))
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "b"}})
	for range 2 {
		if err := flow.received(cost); err != nil {
			t.Fatal(err)
		}
		q.pushPayload(Event{Type: Message, Peer: Peer{Name: "b"}, Payload: []byte("x")}, flow)
	}
	<-q.wake
	var got []Event
	for {
		ev, ok := q.poll()
		if !ok {
			break
		}
		got = append(got, ev)
	}
	if want := []string{"link-up b", "message b x", "message b x"}; !slices.Equal(describeEvents(got), want) {
		t.Fatalf("polled %q, want %q", describeEvents(got), want)
	}
	if err := flow.received(cost); err != nil {
		t.Fatalf("credit not returned as the payloads were taken: %v", err)
	}
	select {
	case ev := <-q.channel():
		t.Fatalf("the channel delivered %v to a polling consumer", ev)
	case <-time.After(20 * time.Millisecond):
	}
	close(done)
	<-pumped
}

// A consumer's inline turn is offered each payload the reader queues: a
// turn that took everything leaves the consumer's loop unsignalled (no
// goroutine is woken for it), and one that could not (another turn was
// under way) signals EventsWaiting as before, so nothing waits unseen.
func TestInlineTurnTakesPayloadsOrLeavesThemSignalled(t *testing.T) {
	q := newEventQueue()
	flow := newFlowControl(1 << 10)
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "b"}})
	<-q.wake
	var taken []Event
	busy := false
	turn := func() bool {
		if busy {
			return false
		}
		for {
			ev, ok := q.poll()
			if !ok {
				return true
			}
			taken = append(taken, ev)
		}
	}
	q.turn.Store(&turn)
	payload := func(p string) Event { return Event{Type: Message, Peer: Peer{Name: "b"}, Payload: []byte(p)} }
	if !q.pushPayloadIfLinked(payload("1"), flow) {
		t.Fatal("refused while linked")
	}
	if want := []string{"link-up b", "message b 1"}; !slices.Equal(describeEvents(taken), want) {
		t.Fatalf("the turn took %q, want %q", describeEvents(taken), want)
	}
	select {
	case <-q.wake:
		t.Fatal("the loop was signalled for a payload the reader's turn took")
	default:
	}
	busy = true
	q.pushPayloadIfLinked(payload("2"), flow)
	select {
	case <-q.wake:
	default:
		t.Fatal("a payload no turn took was left unsignalled")
	}
	if ev, ok := q.poll(); !ok || string(ev.Payload) != "2" {
		t.Fatalf("polled %v %v, want the payload the turn left", ev, ok)
	}
}
