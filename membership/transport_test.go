package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/cpggo/cpg/membership/hyparview"
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

// TestConsumerThatNeverReadsIsNotWaitedFor: b never reads its events, so
// the link's credit runs out; a keeps sending. Send must never block, must
// report the full queue, and the link must stay up: b is alive, only its
// application is not reading.
func TestConsumerThatNeverReadsIsNotWaitedFor(t *testing.T) {
	a, b := joinPair(t)
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
	// Several link timeouts: long enough for the old behaviour (dropping
	// the link) to show.
	end := time.Now().Add(3 * linkTimeout(a.cfg.KeepAlive, initialRTO))
	for time.Now().Before(end) {
		start := time.Now()
		err := a.Send("b", payload)
		took = append(took, time.Since(start))
		switch {
		case err == nil:
			sent++
		case errors.Is(err, ErrQueueFull):
			full++
			time.Sleep(time.Millisecond)
		default:
			t.Fatalf("send after %d accepted, %d refused: %v", sent, full, err)
		}
		select {
		case ev := <-downs:
			t.Fatalf("a dropped b (%s) after %d payloads of 64 KiB queued, %d refused as queue-full", ev.Reason, sent, full)
		default:
		}
	}
	slices.Sort(took)
	p99, slowest := took[len(took)*99/100], took[len(took)-1]
	t.Logf("%d payloads of 64 KiB queued, %d refused as queue-full; Send p99 %v, slowest %v", sent, full, p99, slowest)
	if full == 0 {
		t.Fatal("the queue never filled: the backlog is unbounded")
	}
	// b's window, the writer's queue and the payload it holds.
	if want := linkWindow(b.cfg.MaxFrame)/int(payloadCost(len(payload)+1)) + dataQueueLen + 1; sent > want {
		t.Fatalf("%d payloads accepted for a consumer that reads nothing, want at most the window plus the queue (%d)", sent, want)
	}
	// A Send that waited for the stalled peer would wait for the link's
	// timeout (hundreds of ms) every time the queue is full; the odd slow
	// call is the host pausing the process.
	if p99 > 20*time.Millisecond {
		t.Fatalf("Send p99 %v: Send must not block on a slow peer", p99)
	}
	if !containsPeer(a.Active(), "b") || !containsPeer(b.Active(), "a") {
		t.Fatalf("the link is gone: a %v, b %v", names(a.Active()), names(b.Active()))
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

func bareNode(self string) *Node {
	return &Node{self: Peer{Name: self}, links: make(map[string]*link), conns: make(map[*link]struct{})}
}

// TestAdoptKeepsTheLinkDialedByTheLowerName: when two nodes open links to
// each other at once, both keep the one the lower name dialed, and only its
// dialer retires the other, so neither side loses a link it still uses.
func TestAdoptKeepsTheLinkDialedByTheLowerName(t *testing.T) {
	// On b (the higher name): its own dial loses to a's.
	b := bareNode("b")
	ours := newLink(Peer{Name: "a"}, "b", linkWindow(wire.DefaultMaxFrame))
	b.links["a"] = ours
	theirs := newLink(Peer{Name: "a"}, "a", linkWindow(wire.DefaultMaxFrame))
	if !b.adopt(theirs) {
		t.Fatal("adopt refused")
	}
	if b.links["a"] != theirs || !ours.stopped() {
		t.Fatal("b did not switch to a's link and retire its own")
	}

	// On a (the lower name): its own dial wins; b's link stays open,
	// unused, until b closes it.
	a := bareNode("a")
	ours = newLink(Peer{Name: "b"}, "a", linkWindow(wire.DefaultMaxFrame))
	a.links["b"] = ours
	theirs = newLink(Peer{Name: "b"}, "b", linkWindow(wire.DefaultMaxFrame))
	if !a.adopt(theirs) {
		t.Fatal("adopt refused")
	}
	if a.links["b"] != ours || ours.stopped() || theirs.stopped() {
		t.Fatal("a did not keep its own link and leave b's open")
	}

	// If a's link then fails, b's still-open link takes over: no failure
	// reaches the core.
	theirs.established.Store(1)
	primary, replaced := a.unlinkPrimary(ours)
	if !primary || !replaced || a.links["b"] != theirs {
		t.Fatalf("unlinkPrimary: primary=%v replaced=%v", primary, replaced)
	}
}

func TestAdoptPrefersTheNewerLinkFromTheSameDialer(t *testing.T) {
	a := bareNode("a")
	old := newLink(Peer{Name: "b"}, "b", linkWindow(wire.DefaultMaxFrame))
	a.links["b"] = old
	fresh := newLink(Peer{Name: "b"}, "b", linkWindow(wire.DefaultMaxFrame))
	a.adopt(fresh)
	if a.links["b"] != fresh {
		t.Fatal("a reconnecting peer's new link did not replace the old one")
	}
	if old.stopped() {
		t.Fatal("a retired a link the peer dialed; closing it is the peer's call")
	}
}

// TestSilentPeerIsDroppedByKeepalive: a peer that completes the handshake,
// joins, and then never sends another frame (a hung process, a dead host
// whose socket never closes) is declared failed by the keepalive timeout.
func TestSilentPeerIsDroppedByKeepalive(t *testing.T) {
	n := startNode(t, testNodeConfig("a"))
	dialAsGhost(t, n)
	up := nextEvent(t, n, LinkUp, 5*time.Second)
	if up.Peer.Name != "ghost" {
		t.Fatalf("link-up for %v, want ghost", up.Peer)
	}
	upAt := time.Now()
	down := nextEvent(t, n, LinkDown, 10*time.Second)
	silentFor := time.Since(upAt)
	if down.Peer.Name != "ghost" || down.Reason != hyparview.ReasonFailed {
		t.Fatalf("link-down %+v, want ghost failed", down)
	}
	ka := n.cfg.KeepAlive
	// No RTT sample ever arrived, so the timeout is KeepAlive + the
	// initial RTO; the sweep runs every KeepAlive.
	want := linkTimeout(ka, initialRTO)
	t.Logf("silent peer dropped %v after link-up (timeout %v, keepalive %v)", silentFor.Round(time.Millisecond), want, ka)
	if silentFor < want-ka {
		t.Fatalf("dropped after %v, before its %v timeout", silentFor, want)
	}
	if silentFor > want+3*ka*testTimeScale {
		t.Fatalf("dropped only after %v, timeout is %v", silentFor, want)
	}
	if containsPeer(n.Active(), "ghost") || containsPeer(n.Passive(), "ghost") {
		t.Fatal("the failed peer is still in a view")
	}
}

// BenchmarkLinkPayloads measures payload throughput over one overlay link
// on loopback: a sends, b's consumer reads, Send backs off on a full queue.
func BenchmarkLinkPayloads(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			src := startNode(b, testNodeConfig("a"))
			dst := startNode(b, testNodeConfig("b"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := dst.Join(ctx, src.GossipAddr()); err != nil {
				b.Fatal(err)
			}
			waitFor(b, 5*time.Second, "not linked", func() bool { return containsPeer(src.Active(), "b") })
			received := make(chan struct{})
			go func() {
				defer close(received)
				got := 0
				for ev := range dst.Events() {
					if ev.Type == Message {
						if got++; got == b.N {
							return
						}
					}
				}
			}()
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; {
				switch err := src.Send("b", payload); {
				case err == nil:
					i++
				case errors.Is(err, ErrQueueFull):
					time.Sleep(50 * time.Microsecond)
				default:
					b.Fatal(err)
				}
			}
			<-received
			b.StopTimer()
			src.shutdown(false)
			dst.shutdown(false)
			for range dst.Events() {
			}
		})
	}
}

// TestIdleConnectionsAreBounded: connections that never finish their
// handshake hold at most maxPendingHandshakes goroutines; the next one is
// closed at once.
func TestIdleConnectionsAreBounded(t *testing.T) {
	n := startNode(t, testNodeConfig("a"))
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range maxPendingHandshakes {
		c, err := net.Dial("tcp", n.Self().Addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// The node's hello arrives on every held connection; once all 64 have
	// it, all 64 are in their handshake.
	for _, c := range idle {
		if _, _, err := wire.ReadFrame(c, maxHandshakeFrame); err != nil {
			t.Fatalf("no hello on a pending connection: %v", err)
		}
	}
	extra, err := net.Dial("tcp", n.Self().Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := wire.ReadFrame(extra, maxHandshakeFrame); err == nil {
		t.Fatal("a connection beyond the limit got a handshake")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a connection beyond the limit was held open instead of closed")
	}
}

// dialAsGhost opens a raw connection to node n (named "a"), completes the
// handshake as the peer "ghost" and sends JOIN, so that n links it; the
// test then speaks for ghost frame by frame. The connection closes with
// the test.
func dialAsGhost(t *testing.T, n *Node) (net.Conn, handshakeResult) {
	t.Helper()
	conn, err := net.Dial("tcp", n.Self().Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ghost := handshake{self: Peer{Name: "ghost", Addr: "127.0.0.1:1"}, label: defaultLabel, key: testKey, timeout: 5 * time.Second}
	res, err := ghost.dial(conn, "a", false)
	if err != nil {
		t.Fatal(err)
	}
	typ, body := hyparview.EncodeMessage(hyparview.MsgJoin{Epoch: 1})
	if err := wire.WriteFrame(conn, typ, body, wire.DefaultMaxFrame); err != nil {
		t.Fatal(err)
	}
	return conn, res
}
