package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cpggo/cpg/membership/hyparview"
)

// testNodeConfig is a node tuned for loopback: fast ticks, keepalives and
// memberlist probes, so that tests observe failures within a second or two.
func testNodeConfig(name string) NodeConfig {
	gossip := LoopbackGossipConfig()
	gossip.TCPTimeout *= testTimeScale
	gossip.ProbeTimeout *= testTimeScale
	gossip.ProbeInterval *= testTimeScale
	return NodeConfig{
		Name:         name,
		ClusterKey:   testKey,
		TickInterval: testTimeScale * 20 * time.Millisecond,
		KeepAlive:    testTimeScale * 200 * time.Millisecond,
		Gossip:       gossip,
	}
}

func startNode(t testing.TB, cfg NodeConfig) *Node {
	t.Helper()
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { n.shutdown(false) })
	return n
}

// restartNode starts cfg again at the gossip address an earlier node held.
// Other tests running meanwhile may be handed that port by the OS; the
// test is then skipped rather than failed, as it cannot be run.
func restartNode(t testing.TB, cfg NodeConfig) *Node {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := Start(cfg)
		if err == nil {
			t.Cleanup(func() { n.shutdown(false) })
			return n
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("restart %s: %v", cfg.Name, err)
		}
		if time.Now().After(deadline) {
			t.Skipf("another process holds %s's old address %s: %v", cfg.Name, cfg.GossipAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	within *= testTimeScale
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nextEvent returns the next event of the given type, skipping others.
func nextEvent(t testing.TB, n *Node, typ EventType, within time.Duration) Event {
	t.Helper()
	timeout := time.After(within * testTimeScale)
	for {
		select {
		case ev, ok := <-n.Events():
			if !ok {
				t.Fatalf("%s: events closed while waiting for %v", n.Self().Name, typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: no %v event within %v", n.Self().Name, typ, within)
		}
	}
}

func names(peers []Peer) []string {
	out := make([]string, len(peers))
	for i, p := range peers {
		out[i] = p.Name
	}
	return out
}

func TestStartValidatesConfig(t *testing.T) {
	for _, c := range []NodeConfig{
		{},
		{Name: "a", ClusterKey: []byte("short")},
		{Name: "a", HyParView: hyparview.Config{ActiveSize: -1}},
		{Name: "a", BindAddr: "not an address"},
		{Name: "a", BindAddr: "0.0.0.0:0"}, // no AdvertiseAddr: nobody could dial it
	} {
		if n, err := Start(c); err == nil {
			n.Close()
			t.Errorf("Start(%+v) succeeded", c)
		}
	}
}

func TestTwoNodesLinkAndExchangePayloads(t *testing.T) {
	a := startNode(t, testNodeConfig("a"))
	b := startNode(t, testNodeConfig("b"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatalf("join: %v", err)
	}
	if ev := nextEvent(t, a, LinkUp, 5*time.Second); ev.Peer.Name != "b" || ev.Peer.Addr != b.Self().Addr {
		t.Fatalf("a's link-up: %+v, want b at %s", ev.Peer, b.Self().Addr)
	}
	if ev := nextEvent(t, b, LinkUp, 5*time.Second); ev.Peer.Name != "a" {
		t.Fatalf("b's link-up: %+v", ev.Peer)
	}
	if got := names(a.Active()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("a's active view %v, want [b]", got)
	}
	if got := names(b.Active()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("b's active view %v, want [a]", got)
	}

	const count = 2000
	// More than the link buffers: b must read while a sends.
	sendErr := make(chan error, 1)
	go func() {
		for i := range count {
			// The queue holds a few hundred payloads; a full one is the
			// caller's cue to slow down, not a failure of the link.
			for {
				err := a.Send("b", []byte(fmt.Sprint(i)))
				if err == nil {
					break
				}
				if !errors.Is(err, ErrQueueFull) {
					sendErr <- fmt.Errorf("send %d: %w", i, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
		sendErr <- nil
	}()
	for i := range count {
		ev := nextEvent(t, b, Message, 5*time.Second)
		if ev.Peer.Name != "a" || string(ev.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q from %s", i, ev.Payload, ev.Peer.Name)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}

	if err := a.Send("nobody", []byte("x")); !errors.Is(err, ErrNotActive) {
		t.Fatalf("send to a stranger: %v, want ErrNotActive", err)
	}
	waitFor(t, 5*time.Second, "no RTT measured on the link", func() bool {
		rtt, ok := a.RTT("b")
		return ok && rtt > 0 && rtt < time.Second
	})
	rtt, _ := a.RTT("b")
	t.Logf("smoothed RTT of the a-b link over loopback: %v", rtt)
}

func TestJoinFailsClearlyWithoutContact(t *testing.T) {
	a := startNode(t, testNodeConfig("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A port nothing listens on: memberlist cannot reach it.
	err := a.Join(ctx, "127.0.0.1:1")
	if err == nil {
		t.Fatal("join through a dead address succeeded")
	}
	if len(a.Active()) != 0 {
		t.Fatalf("active view %v after a failed join", a.Active())
	}
	if err := a.Join(ctx); err == nil {
		t.Fatal("join without contacts succeeded")
	}
}

func TestCloseEndsStreams(t *testing.T) {
	a := startNode(t, testNodeConfig("a"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-a.Events(); ok {
		t.Fatal("events channel still open after Close")
	}
	for range a.Statuses() {
	}
	if err := a.Send("b", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

// TestStatusStream: a crashed node is reported suspect (its link broke)
// and then dead (memberlist's verdict); a node that closes is reported left.
func TestStatusStream(t *testing.T) {
	nodes := startCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	waitOverlay(t, nodes, 2, 3, 10*time.Second)
	waitFor(t, 5*time.Second, "a does not list b and c alive", func() bool {
		alive := 0
		for _, m := range a.Members() {
			if m.Status == StatusAlive && (m.Name == "n01" || m.Name == "n02") {
				alive++
			}
		}
		return alive == 2
	})
	for _, m := range a.Members() {
		if m.Name == b.Self().Name && (m.Addr != b.Self().Addr || m.GossipAddr != b.GossipAddr()) {
			t.Fatalf("a's record of b: %+v, want overlay %s gossip %s", m, b.Self().Addr, b.GossipAddr())
		}
	}

	c.shutdown(false)
	seen := map[NodeStatus]bool{}
	timeout := time.After(10 * time.Second)
	for !seen[StatusDead] {
		select {
		case ev := <-a.Statuses():
			if ev.Name != c.Self().Name {
				continue
			}
			t.Logf("a: %s %v -> %v", ev.Name, ev.Previous, ev.Status)
			if ev.Status == StatusDead && !seen[StatusSuspect] {
				t.Fatalf("c declared dead without first being suspect, though its link broke at once")
			}
			seen[ev.Status] = true
		case <-timeout:
			t.Fatalf("no dead verdict on c; saw %v", seen)
		}
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	timeout = time.After(10 * time.Second)
	for {
		select {
		case ev := <-a.Statuses():
			if ev.Name != b.Self().Name {
				continue
			}
			t.Logf("a: %s %v -> %v", ev.Name, ev.Previous, ev.Status)
			if ev.Status == StatusDead {
				t.Fatal("b closed gracefully but was reported dead")
			}
			if ev.Status == StatusLeft {
				return
			}
		case <-timeout:
			t.Fatal("b's leave was not reported")
		}
	}
}

func TestNodeMetaRoundTrip(t *testing.T) {
	m := nodeMeta{Addr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:7400", Leaving: true}
	got, err := decodeNodeMeta(appendNodeMeta(nil, m))
	if err != nil || got != m {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := decodeNodeMeta(append(appendNodeMeta(nil, m), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if _, err := decodeNodeMeta([]byte{9}); err == nil {
		t.Fatal("unknown version accepted")
	}
}

// FuzzDecodeNodeMeta: metadata arrives from any memberlist member; its
// decoder must never panic, and what decodes must round-trip.
func FuzzDecodeNodeMeta(f *testing.F) {
	f.Add(appendNodeMeta(nil, nodeMeta{Addr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}))
	f.Add([]byte{})
	f.Add([]byte{nodeMetaVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeNodeMeta(b)
		if err != nil {
			return
		}
		m2, err := decodeNodeMeta(appendNodeMeta(nil, m))
		if err != nil || m2 != m {
			t.Fatalf("%+v round-trips to %+v (%v)", m, m2, err)
		}
	})
}

// TestIsolatedNodeRejoinsThroughMemberlist: a node that has joined but has
// no active peer and no passive peer left takes a new contact from
// memberlist's member list on its own.
func TestIsolatedNodeRejoinsThroughMemberlist(t *testing.T) {
	a, b := joinPair(t)
	c := startNode(t, testNodeConfig("c"))
	// c joins memberlist only, as if its overlay links had all failed
	// after a Join: it is isolated, and must find a contact by itself.
	if err := c.gossip.join([]string{b.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.joined = true
	c.mu.Unlock()
	waitFor(t, 10*time.Second, "c did not rejoin the overlay", func() bool {
		act := c.Active()
		return len(act) > 0 && (containsPeer(a.Active(), "c") || containsPeer(b.Active(), "c"))
	})
	t.Logf("c rejoined: active %v", names(c.Active()))
}

// TestRestartedNodeRejoinsWithNewAddress: a node that crashes and comes
// back under the same name on new ports is linked again, under its new
// overlay address.
func TestRestartedNodeRejoinsWithNewAddress(t *testing.T) {
	a, b := joinPair(t)
	oldAddr := b.Self().Addr
	b.shutdown(false)
	waitFor(t, 10*time.Second, "a did not see b die", func() bool {
		info, ok := a.table.get("b")
		return ok && info.Status == StatusDead && !containsPeer(a.Active(), "b")
	})
	// The status says dead as soon as the link closed and b's port refused
	// a connection; memberlist takes its probes' time to agree, and only
	// then lets the name come back from another address.
	waitFor(t, 10*time.Second, "memberlist did not rule b dead", func() bool {
		a.gossip.mu.Lock()
		defer a.gossip.mu.Unlock()
		_, dead := a.gossip.dead["b"]
		return dead
	})
	// Past memberlist's reclaim time, the name may come back from elsewhere.
	time.Sleep(a.cfg.Gossip.DeadNodeReclaimTime)
	b2 := startNode(t, testNodeConfig("b"))
	if b2.Self().Addr == oldAddr {
		t.Skip("the OS gave the restarted node its old port")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeScale*10*time.Second)
	defer cancel()
	if err := b2.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatalf("restarted b cannot join: %v", err)
	}
	waitFor(t, 5*time.Second, "a has not linked the restarted b at its new address", func() bool {
		for _, p := range a.Active() {
			if p.Name == "b" {
				return p.Addr == b2.Self().Addr
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "a does not list b alive again", func() bool {
		info, ok := a.table.get("b")
		return ok && info.Status == StatusAlive && info.Addr == b2.Self().Addr
	})
}

// TestDeadMemberIsReconnected: a node that memberlist declared dead and
// that comes back at the same gossip address without joining anyone (the
// far side of a long partition looks like this) is reached by the
// reconnect loop, and the overlay links them again.
func TestDeadMemberIsReconnected(t *testing.T) {
	a, b := joinPair(t)
	gossipAddr := b.GossipAddr()
	b.shutdown(false)
	waitFor(t, 10*time.Second, "a did not see b die", func() bool {
		info, ok := a.table.get("b")
		return ok && info.Status == StatusDead
	})
	time.Sleep(a.cfg.Gossip.DeadNodeReclaimTime)
	cfg := testNodeConfig("b")
	cfg.GossipAddr = gossipAddr
	b2 := restartNode(t, cfg)
	// b2 never calls Join: only a's reconnect loop can find it. Marking it
	// joined lets it rejoin the overlay once memberlist knows a contact.
	b2.mu.Lock()
	b2.joined = true
	b2.mu.Unlock()
	waitFor(t, 10*time.Second, "a did not reconnect to the restarted b", func() bool {
		info, ok := a.table.get("b")
		return ok && info.Status == StatusAlive && info.Addr == b2.Self().Addr
	})
	waitFor(t, 10*time.Second, "the overlay did not link a and b again", func() bool {
		return containsPeer(a.Active(), "b") && containsPeer(b2.Active(), "a")
	})
}
