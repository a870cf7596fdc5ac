package membership

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// joinPair starts two nodes and links them.
func joinPair(t *testing.T) (a, b *Node) {
	t.Helper()
	a = startNode(t, testNodeConfig("a"))
	b = startNode(t, testNodeConfig("b"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatalf("join: %v", err)
	}
	waitFor(t, 5*time.Second, "a and b not linked", func() bool {
		return containsPeer(a.Active(), "b") && containsPeer(b.Active(), "a")
	})
	return a, b
}

// TestSlowConsumerIsDroppedNotWaitedFor: b never reads its events, so its
// links back up; a keeps sending. Send must never block, must report the
// full queue, and a must drop the link to b rather than wait on it.
func TestSlowConsumerIsDroppedNotWaitedFor(t *testing.T) {
	a, _ := joinPair(t)
	downs := make(chan Event, 16)
	go func() {
		for ev := range a.Events() {
			if ev.Type == LinkDown && ev.Peer.Name == "b" {
				downs <- ev
			}
		}
	}()
	payload := bytes.Repeat([]byte("x"), 64<<10)
	var sent, full int
	var took []time.Duration
	deadline := time.After(testTimeScale * 15 * time.Second)
	for {
		start := time.Now()
		err := a.Send("b", payload)
		took = append(took, time.Since(start))
		switch {
		case err == nil:
			sent++
		case errors.Is(err, ErrQueueFull):
			full++
		case errors.Is(err, ErrNotActive):
			// b was dropped; the link-down event must say so.
		default:
			t.Fatalf("send: %v", err)
		}
		select {
		case ev := <-downs:
			slices.Sort(took)
			p99, slowest := took[len(took)*99/100], took[len(took)-1]
			t.Logf("a dropped b (%s) after %d payloads of 64 KiB queued, %d refused as queue-full; Send p99 %v, slowest %v",
				ev.Reason, sent, full, p99, slowest)
			if full == 0 {
				t.Fatal("the link was dropped before its queue ever filled")
			}
			// A Send that waited for the stalled peer would wait for the
			// link's timeout (hundreds of ms) every time the queue is
			// full; the odd slow call is the host pausing the process.
			if p99 > 20*time.Millisecond {
				t.Fatalf("Send p99 %v: Send must not block on a slow peer", p99)
			}
			return
		case <-deadline:
			t.Fatalf("a still links b after %d sends (%d refused); active %v", sent, full, names(a.Active()))
		default:
		}
		if err != nil {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestPayloadsArriveInOrderPerLink checks ordering when both nodes send at
// once, with payloads of very different sizes interleaved with the
// keepalive and protocol traffic on the same link.
func TestPayloadsArriveInOrderPerLink(t *testing.T) {
	a, b := joinPair(t)
	const count = 300
	send := func(from *Node, to string) error {
		for i := range count {
			p := bytes.Repeat([]byte{byte(i)}, 1+(i*997)%20000)
			for {
				err := from.Send(to, p)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrQueueFull) {
					return err
				}
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	}
	errs := make(chan error, 2)
	go func() { errs <- send(a, "b") }()
	go func() { errs <- send(b, "a") }()
	for _, n := range []*Node{a, b} {
		for i := range count {
			ev := nextEvent(t, n, Message, 10*time.Second)
			want := bytes.Repeat([]byte{byte(i)}, 1+(i*997)%20000)
			if !bytes.Equal(ev.Payload, want) {
				t.Fatalf("%s: payload %d: %d bytes of %d, want %d bytes of %d", n.Self().Name, i, len(ev.Payload), ev.Payload[0], len(want), want[0])
			}
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSendRefusesOversizedPayload(t *testing.T) {
	a, _ := joinPair(t)
	if err := a.Send("b", make([]byte, a.cfg.MaxFrame)); err == nil {
		t.Fatal("a payload over MaxFrame was accepted")
	}
}
