package broadcast

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/stretchr/testify/require"
)

// orderLog records the ids one node delivers, in delivery order.
type orderLog struct {
	mu  sync.Mutex
	ids []string
}

func (l *orderLog) deliver(id, _ []byte) {
	l.mu.Lock()
	l.ids = append(l.ids, string(id))
	l.mu.Unlock()
}

func (l *orderLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ids...)
}

// An application's outbox, taken by the node's goroutine after Wake, goes
// out in the order it was queued, whether its messages were queued one
// Wake each or many to a Wake; DrainOutbox sends what is queued with no
// Wake at all before it returns.
func TestOutboxGoesOutInOrder(t *testing.T) {
	net := newMemNet()
	net.add("a")
	net.add("b")
	net.link("a", "b")
	a, err := Start(net.nodes["a"], Options{TickInterval: time.Hour})
	require.NoError(t, err)
	defer a.Close()
	b, err := Start(net.nodes["b"], Options{TickInterval: time.Hour})
	require.NoError(t, err)
	defer b.Close()
	var received orderLog
	for _, n := range []*Node{a, b} {
		s, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: received.deliver})
		require.NoError(t, err)
		require.NoError(t, n.Register("app", s))
	}

	var mu sync.Mutex
	var queued []Outgoing
	takes := 0
	require.NoError(t, a.SetOutbox(func() []Outgoing {
		mu.Lock()
		defer mu.Unlock()
		takes++
		out := queued
		queued = nil
		return out
	}))
	queue := func(id string) {
		mu.Lock()
		queued = append(queued, Outgoing{Topic: "app", ID: []byte(id), Payload: []byte(id)})
		mu.Unlock()
	}
	var want []string
	for i := range 200 {
		id := fmt.Sprintf("woken-%03d", i)
		want = append(want, id)
		queue(id)
		a.Wake()
	}
	for i := range 3 {
		id := fmt.Sprintf("drained-%d", i)
		want = append(want, id)
		queue(id)
	}
	require.NoError(t, a.DrainOutbox())
	mu.Lock()
	require.Empty(t, queued, "DrainOutbox returned before taking the outbox")
	require.LessOrEqual(t, takes, 202, "every Wake took the outbox more than once")
	mu.Unlock()
	require.Eventually(t, func() bool { return len(received.snapshot()) == len(want) }, 5*time.Second, time.Millisecond)
	require.Equal(t, want, received.snapshot())
	st, err := a.Stats()
	require.NoError(t, err)
	require.Zero(t, st.OutboxErrors)
}

// A message for a topic nobody registered is counted, not sent, and the
// rest of the outbox still goes.
func TestOutboxCountsRefusedMessages(t *testing.T) {
	net := newMemNet()
	net.add("a")
	net.add("b")
	net.link("a", "b")
	var received orderLog
	nodes := map[string]*Node{}
	for _, name := range []string{"a", "b"} {
		n, err := Start(net.nodes[name], Options{TickInterval: time.Hour})
		require.NoError(t, err)
		defer n.Close()
		s, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: received.deliver})
		require.NoError(t, err)
		require.NoError(t, n.Register("app", s))
		nodes[name] = n
	}
	pending := []Outgoing{{Topic: "nobody", ID: []byte("x")}, {Topic: "app", ID: []byte("y")}}
	require.NoError(t, nodes["a"].SetOutbox(func() []Outgoing { out := pending; pending = nil; return out }))
	require.NoError(t, nodes["a"].DrainOutbox())
	st, err := nodes["a"].Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.OutboxErrors)
	require.Eventually(t, func() bool { return len(received.snapshot()) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []string{"y"}, received.snapshot())
}
