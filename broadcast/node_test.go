package broadcast

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/stretchr/testify/require"
)

// deliveryLog counts deliveries per node and id across driver goroutines.
type deliveryLog struct {
	mu    sync.Mutex
	count map[string]map[string]int
}

func newDeliveryLog() *deliveryLog { return &deliveryLog{count: map[string]map[string]int{}} }

func (l *deliveryLog) deliver(node string) func(id, payload []byte) {
	return func(id, _ []byte) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.count[node] == nil {
			l.count[node] = map[string]int{}
		}
		l.count[node][string(id)]++
	}
}

// complete reports whether every node but the id's origin delivered every
// id, and returns any id delivered more than once.
func (l *deliveryLog) complete(nodes []string, origin map[string]string) (bool, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	done := true
	var dups []string
	for _, n := range nodes {
		for id, from := range origin {
			c := l.count[n][id]
			if c > 1 {
				dups = append(dups, fmt.Sprintf("%s got %s %d times", n, id, c))
			}
			if c == 0 && n != from {
				done = false
			}
		}
	}
	return done, dups
}

func startMemCluster(t *testing.T, net *memNet, names []string, log *deliveryLog) map[string]*Node {
	nodes := map[string]*Node{}
	for _, name := range names {
		n, err := Start(net.nodes[name], Options{TickInterval: 10 * time.Millisecond})
		require.NoError(t, err)
		s, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: log.deliver(name)})
		require.NoError(t, err)
		require.NoError(t, n.Register("app", s))
		nodes[name] = n
	}
	return nodes
}

func TestNodeOverMemoryTransport(t *testing.T) {
	net := newMemNet()
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("n%02d", i))
		net.add(names[i])
	}
	log := newDeliveryLog()
	nodes := startMemCluster(t, net, names, log)
	defer func() {
		for _, n := range nodes {
			require.NoError(t, n.Close())
		}
	}()
	// A ring with chords: every node has degree 4.
	for i := range names {
		net.link(names[i], names[(i+1)%len(names)])
		if i%2 == 0 {
			net.link(names[i], names[(i+5)%len(names)])
		}
	}

	// A broadcast before its node has seen its links reaches nobody (a
	// plumtree.SeenSet does no anti-entropy), so wait for every LinkUp to land.
	require.Eventually(t, func() bool {
		for _, name := range names {
			eager, lazy, err := nodes[name].Peers("none-yet")
			require.NoError(t, err)
			if len(eager)+len(lazy) != len(net.nodes[name].Active()) {
				return false
			}
		}
		return true
	}, 5*time.Second, time.Millisecond)

	origin := map[string]string{}
	broadcast := func(from string, k int) {
		id := fmt.Sprintf("%s-%d", from, k)
		origin[id] = from
		require.NoError(t, nodes[from].Broadcast("app", []byte(id), []byte("payload")))
	}
	waitAll := func(live []string) {
		require.Eventually(t, func() bool {
			done, dups := log.complete(live, origin)
			require.Empty(t, dups)
			return done
		}, 10*time.Second, 5*time.Millisecond)
	}
	for k := range 20 {
		broadcast(names[k%3], k)
	}
	waitAll(names)

	// Once the tree of n00 has formed, a broadcast from it costs n-1
	// payloads. The broadcasts above form it in nearly every run; when a
	// copy was late on a loaded machine (a graft after 3 ticks of 10 ms),
	// the graft or the optimisation that follows reshapes the tree and a
	// later broadcast or two still carry a redundant copy. The tree must
	// settle within a few more.
	var costs []uint64
	for k := 100; ; k++ {
		before := settled(t, nodes)
		broadcast("n00", k)
		waitAll(names)
		require.Eventually(t, func() bool { return gossipReceived(t, nodes)-before >= uint64(len(names)-1) }, time.Second, time.Millisecond)
		time.Sleep(20 * time.Millisecond) // let any redundant copy land
		cost := gossipReceived(t, nodes) - before
		costs = append(costs, cost)
		if cost == uint64(len(names)-1) {
			break
		}
		require.Less(t, len(costs), 4, "payloads per broadcast from n00: %v; repairs: %+v", costs, repairs(t, nodes))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tree, err := nodes["n05"].Tree(ctx, "n00")
	require.NoError(t, err)
	require.Len(t, tree.Nodes, len(names))
	edges := 0
	for _, tn := range tree.Nodes {
		edges += len(tn.Eager)
	}
	require.Equal(t, 2*(len(names)-1), edges, "a spanning tree, each edge seen from both ends: %+v", tree.Nodes)

	roots, err := nodes["n05"].Roots()
	require.NoError(t, err)
	require.Equal(t, []string{"n00", "n01", "n02"}, roots)
	eager, lazy, err := nodes["n00"].Peers("n00")
	require.NoError(t, err)
	require.Len(t, append(eager, lazy...), 3)

	// Crash n03: its links drop, the trees repair, and the rest still get
	// every message exactly once.
	net.isolate("n03")
	require.NoError(t, nodes["n03"].Close())
	delete(nodes, "n03")
	var live []string
	for _, n := range names {
		if n != "n03" {
			live = append(live, n)
		}
	}
	for id, from := range origin {
		if from == "n03" {
			delete(origin, id)
		}
	}
	for k := 200; k < 220; k++ {
		broadcast(live[k%len(live)], k)
	}
	waitAll(live)

	st, err := nodes["n00"].Stats()
	require.NoError(t, err)
	require.NotZero(t, st.Sent[plumtree.MsgGossip])
	require.Zero(t, st.DecodeErrors)
	_, err = nodes["n00"].Exchanges()
	require.NoError(t, err)
}

func repairs(t *testing.T, nodes map[string]*Node) (r struct{ grafts, optimizations, duplicates uint64 }) {
	for _, n := range nodes {
		st, err := n.Stats()
		require.NoError(t, err)
		r.grafts += st.GraftsSent
		r.optimizations += st.Optimizations
		r.duplicates += st.Duplicates
	}
	return r
}

// settled waits until no payload message has arrived for a while (late
// duplicates of earlier broadcasts would otherwise be counted) and returns
// the count.
// settled waits until no message of any kind has moved for longer than a
// lazy flush and a graft timeout (a payload a full queue refused is
// announced at the next tick and grafted after that), and returns the
// gossip received by then.
func settled(t *testing.T, nodes map[string]*Node) uint64 {
	last := received(t, nodes)
	for {
		time.Sleep(500 * time.Millisecond)
		now := received(t, nodes)
		if now == last {
			return gossipReceived(t, nodes)
		}
		last = now
	}
}

func received(t *testing.T, nodes map[string]*Node) uint64 {
	var sum uint64
	for _, n := range nodes {
		st, err := n.Stats()
		require.NoError(t, err)
		for _, c := range st.Received {
			sum += c
		}
	}
	return sum
}

func gossipReceived(t *testing.T, nodes map[string]*Node) uint64 {
	var sum uint64
	for _, n := range nodes {
		st, err := n.Stats()
		require.NoError(t, err)
		sum += st.Received[plumtree.MsgGossip]
	}
	return sum
}

func TestNodeCloseIsIdempotentAndRefusesCalls(t *testing.T) {
	net := newMemNet()
	n, err := Start(net.add("a"), Options{})
	require.NoError(t, err)
	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	require.ErrorIs(t, n.Broadcast("app", []byte("x"), nil), ErrClosed)
	require.ErrorIs(t, n.Register("app", &plumtree.SeenSet{}), ErrClosed)
	_, err = n.Tree(context.Background(), "a")
	require.ErrorIs(t, err, ErrClosed)
}

// The protocol's newer entry points go through the driver's loop: a relay on
// another root's tree, broadcast members, exchanges started and cancelled.
func TestNodeRelaysAndDrivesExchanges(t *testing.T) {
	net := newMemNet()
	names := []string{"a", "b", "c"}
	for _, name := range names {
		net.add(name)
	}
	log := newDeliveryLog()
	nodes := startMemCluster(t, net, names, log)
	defer func() {
		for _, n := range nodes {
			require.NoError(t, n.Close())
		}
	}()
	net.link("a", "b")
	net.link("b", "c")
	require.Eventually(t, func() bool {
		eager, _, err := nodes["b"].BroadcastMembers("a")
		require.NoError(t, err)
		return len(eager) == 2
	}, 5*time.Second, time.Millisecond)

	require.NoError(t, nodes["b"].BroadcastOn("app", "a", []byte("state-of-a"), []byte("x")))
	require.Eventually(t, func() bool {
		done, dups := log.complete(names, map[string]string{"state-of-a": "b"})
		require.Empty(t, dups)
		return done
	}, 5*time.Second, time.Millisecond)
	eager, lazy, err := nodes["b"].BroadcastMembers("a")
	require.NoError(t, err)
	peerEager, peerLazy, err := nodes["b"].Peers("a")
	require.NoError(t, err)
	require.Equal(t, peerEager, eager)
	require.Equal(t, peerLazy, lazy)

	require.ErrorIs(t, nodes["b"].StartExchange("app", "nobody", nil), plumtree.ErrNotNeighbor)
	// A SeenSet answers no exchange: c ends it at once, and b forgets it.
	require.NoError(t, nodes["b"].StartExchange("app", "c", []byte("hello")))
	require.Eventually(t, func() bool {
		xs, err := nodes["b"].Exchanges()
		require.NoError(t, err)
		return len(xs) == 0
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, nodes["b"].CancelExchanges("", "c"))
	require.NoError(t, nodes["a"].Close())
	require.ErrorIs(t, nodes["a"].BroadcastOn("app", "a", []byte("late"), nil), ErrClosed)
}

// exchangeLog is a SeenSet that opens exchanges and records who opened
// one with whom.
type exchangeLog struct {
	*plumtree.SeenSet
	mu     sync.Mutex
	opened []string // "self->peer"
	self   string
}

func (h *exchangeLog) ExchangeStart(peer string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opened = append(h.opened, h.self+"->"+peer)
	return []byte("digest")
}

func (h *exchangeLog) ExchangeReceive(plumtree.Exchange, []byte) ([]byte, []plumtree.Action) {
	return nil, nil
}

func (h *exchangeLog) openedSoFar() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.opened)
}

// A link reset told only to the end whose name sorts higher still gets an
// exchange, opened by that end: it may have dropped what the peer sent
// over the old link, and the peer, told nothing, would not open one.
// Taken as a plain LinkUp, the reset waited for the periodic exchange
// (every 10 s on average by default; 2.8 s into a partition's heal in the
// benchmark).
func TestAResetLinkIsComparedByTheEndToldOfIt(t *testing.T) {
	net := newMemNet()
	logs := map[string]*exchangeLog{}
	nodes := map[string]*Node{}
	for _, name := range []string{"a", "b"} {
		net.add(name)
		// No periodic exchange within the test: only a link's can open one.
		n, err := Start(net.nodes[name], Options{TickInterval: 10 * time.Millisecond, Config: plumtree.Config{ExchangeTicks: 1 << 20}})
		require.NoError(t, err)
		s, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: func(id, payload []byte) {}})
		require.NoError(t, err)
		logs[name] = &exchangeLog{SeenSet: s, self: name}
		require.NoError(t, n.Register("app", logs[name]))
		nodes[name] = n
	}
	defer func() {
		for _, n := range nodes {
			require.NoError(t, n.Close())
		}
	}()
	net.link("a", "b")
	require.Eventually(t, func() bool { return len(logs["a"].openedSoFar()) == 1 }, 5*time.Second, time.Millisecond)

	net.reset("b", "a")
	require.Eventually(t, func() bool { return len(logs["b"].openedSoFar()) == 1 }, 2*time.Second, time.Millisecond,
		"b, told of the reset, opened no exchange with a")
	require.Equal(t, []string{"b->a"}, logs["b"].openedSoFar())
	require.Equal(t, []string{"a->b"}, logs["a"].openedSoFar())
}

// An idle node's loop sleeps through the ticks that have nothing to do,
// and its protocol still keeps time with the clock; work that comes after
// the idleness gets its ticks on time: an exchange the peer never answers
// times out after ExchangeTimeoutTicks (10 ticks), not at the end of an
// idle wait (up to 100).
func TestAnIdleNodeSleepsThroughItsIdleTicks(t *testing.T) {
	net := newMemNet()
	net.add("a")
	net.add("b") // no Node reads b's events: a's exchange goes unanswered
	const tick = 5 * time.Millisecond
	a, err := Start(net.nodes["a"], Options{TickInterval: tick, Config: plumtree.Config{ExchangeTicks: 1 << 20, ExchangeTimeoutTicks: 10}})
	require.NoError(t, err)
	defer func() { require.NoError(t, a.Close()) }()
	h := &exchangeLog{self: "a"}
	h.SeenSet, err = plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: func(id, payload []byte) {}})
	require.NoError(t, err)
	require.NoError(t, a.Register("app", h))

	start := time.Now()
	time.Sleep(500 * time.Millisecond)
	s, err := a.Stats()
	require.NoError(t, err)
	elapsed := int64(time.Since(start) / tick)
	require.InDelta(t, elapsed, int64(s.Ticks), 10, "the protocol's ticks keep up with the clock")
	require.Less(t, s.TickWakeups, uint64(elapsed/10), "the loop woke for %d of %d ticks", s.TickWakeups, s.Ticks)

	net.link("a", "b") // a opens an exchange with b, which never answers
	require.Eventually(t, func() bool { return len(h.openedSoFar()) == 1 }, time.Second, time.Millisecond)
	opened := time.Now()
	require.Eventually(t, func() bool {
		xs, err := a.Exchanges()
		require.NoError(t, err)
		return len(xs) == 0
	}, 5*time.Second, time.Millisecond)
	took := time.Since(opened)
	require.Less(t, took, 50*tick, "the exchange timed out after %v, want about 10 ticks (%v)", took, 10*tick)
}
