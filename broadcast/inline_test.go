package broadcast

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership"
	"github.com/stretchr/testify/require"
)

// Over membership's TCP links, the reader that received a payload takes
// the protocol's turn itself (the payload reaches its handler without
// waking the Node's goroutine), and turns stay one at a time: four nodes
// broadcasting at once into each other never run two handlers at once on
// one node, and every broadcast is delivered exactly once everywhere.
func TestLinkReadersTakeTheTurnThemselvesOneAtATime(t *testing.T) {
	const n, perNode = 4, 200
	key := make([]byte, 32)
	overlay := make([]*membership.Node, n)
	for i := range overlay {
		m, err := membership.Start(membership.NodeConfig{Name: fmt.Sprintf("in%d", i), ClusterKey: key, Seed: int64(i + 1)})
		require.NoError(t, err)
		overlay[i] = m
		defer m.Close()
	}
	for i := 1; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, overlay[i].Join(ctx, overlay[0].GossipAddr()))
		cancel()
	}
	require.Eventually(t, func() bool {
		for _, m := range overlay {
			if len(m.Active()) != n-1 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "every node linked to every other")

	log := newDeliveryLog()
	var overlapped atomic.Bool
	nodes := map[string]*Node{}
	var names []string
	for _, m := range overlay {
		name := m.Self().Name
		node, err := Start(m, Options{})
		require.NoError(t, err)
		defer node.Close()
		var inFlight atomic.Int32
		deliver := log.deliver(name)
		s, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: func(id, payload []byte) {
			if inFlight.Add(1) > 1 {
				overlapped.Store(true)
			}
			// Widen the window in which a second turn would overlap.
			for until := time.Now().Add(20 * time.Microsecond); time.Now().Before(until); {
			}
			deliver(id, payload)
			inFlight.Add(-1)
		}})
		require.NoError(t, err)
		require.NoError(t, node.Register("app", s))
		nodes[name] = node
		names = append(names, name)
	}

	var mu sync.Mutex
	origin := map[string]string{}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			for k := range perNode {
				id := fmt.Sprintf("%s-%d", name, k)
				mu.Lock()
				origin[id] = name
				mu.Unlock()
				require.NoError(t, nodes[name].Broadcast("app", []byte(id), []byte(id)))
				if k%20 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		done, dups := log.complete(names, origin)
		require.Empty(t, dups)
		return done
	}, 20*time.Second, 20*time.Millisecond, "every broadcast delivered everywhere")
	require.False(t, overlapped.Load(), "two handlers ran at once on one node")
	var inline uint64
	for _, name := range names {
		st, err := nodes[name].Stats()
		require.NoError(t, err)
		inline += st.InlineTurns
	}
	t.Logf("%d turns taken by link readers for %d deliveries", inline, n*perNode*(n-1))
	require.NotZero(t, inline, "no link reader took a turn: every payload went through the Node's goroutine")
}
