package membership

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestLinkEventsDoNotWaitBehindOtherPeersPayloads: a's consumer is behind
// with a backlog of b's payloads when c crashes. a's consumer must learn of
// the lost link to c before it works through b's backlog: only c's own
// payloads may come before c's link-down.
func TestLinkEventsDoNotWaitBehindOtherPeersPayloads(t *testing.T) {
	a := startNode(t, testNodeConfig("a"))
	b := startNode(t, testNodeConfig("b"))
	c := startNode(t, testNodeConfig("c"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []*Node{b, c} {
		if err := n.Join(ctx, a.GossipAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// a's consumer sees both links come up, then stops reading.
	seen := map[string]bool{}
	for !seen["b"] || !seen["c"] {
		seen[nextEvent(t, a, LinkUp, 5*time.Second).Peer.Name] = true
	}

	const backlog = 100
	for i := range backlog {
		if err := b.Send("a", []byte{byte(i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // b's payloads reach a's queue
	c.shutdown(false)
	waitFor(t, 5*time.Second, "a did not notice c's crash", func() bool { return !containsPeer(a.Active(), "c") })

	before := 0
	for {
		select {
		case ev := <-a.Events():
			switch {
			case ev.Type == Message && ev.Peer.Name == "b":
				before++
			case ev.Type == LinkDown && ev.Peer.Name == "c":
				t.Logf("link-down of c delivered after %d of b's %d queued payloads", before, backlog)
				if before > 0 {
					t.Fatalf("c's link-down waited behind %d of b's payloads", before)
				}
				return
			}
		case <-time.After(5 * time.Second * testTimeScale):
			t.Fatalf("no link-down for c; %d of b's payloads delivered", before)
		}
	}
}

// A reset link's LinkUp (marked Reset) that a LinkDown cancels before the
// consumer took it leaves its mark on the peer's next LinkUp: what the
// reset link lost is lost still, and the consumer must compare state with
// the peer when it comes back, whichever end it is.
func TestACancelledResetMarksTheNextLinkUp(t *testing.T) {
	q := newEventQueue()
	b := Peer{Name: "b"}
	q.pushLink(Event{Type: LinkUp, Peer: b})
	if e, _ := q.pop(); e.ev.Type != LinkUp {
		t.Fatalf("first event %+v, want b's LinkUp", e.ev)
	}
	q.pushLink(Event{Type: LinkDown, Peer: b, Reason: "stalled, replaced"})
	q.pushLink(Event{Type: LinkUp, Peer: b, Reset: true})
	q.pushLink(Event{Type: LinkDown, Peer: b, Reason: "keepalive timeout"})
	q.pushLink(Event{Type: LinkUp, Peer: Peer{Name: "c"}})
	q.pushLink(Event{Type: LinkUp, Peer: b})
	var got []Event
	for {
		e, ok := q.pop()
		if !ok {
			break
		}
		got = append(got, e.ev)
	}
	want := []Event{
		{Type: LinkDown, Peer: b, Reason: "stalled, replaced"},
		{Type: LinkUp, Peer: Peer{Name: "c"}},
		{Type: LinkUp, Peer: b, Reset: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	q.pushLink(Event{Type: LinkDown, Peer: b, Reason: "left"})
	q.pushLink(Event{Type: LinkUp, Peer: b})
	if e, _ := q.pop(); e.ev.Reset {
		t.Fatalf("a LinkUp after a taken reset is marked Reset: %+v", e.ev)
	}
}
