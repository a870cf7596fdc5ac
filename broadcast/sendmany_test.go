package broadcast

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/stretchr/testify/require"
)

// manyMemNode is the in-memory overlay with SendMany, recording what each
// call was given, as membership.Node frames once for several peers.
type manyMemNode struct {
	*memNode
	mu    sync.Mutex
	calls [][]string
}

func (m *manyMemNode) SendMany(peers []string, payload []byte) []error {
	m.mu.Lock()
	m.calls = append(m.calls, slices.Clone(peers))
	m.mu.Unlock()
	var errs []error
	for i, p := range peers {
		if err := m.Send(p, payload); err != nil {
			if errs == nil {
				errs = make([]error, len(peers))
			}
			errs[i] = err
		}
	}
	return errs
}

// TestARootsCopiesAreEncodedOnce: the copies a broadcast pushes to its
// eager peers leave as one encoding through SendMany, not one per peer,
// and every peer delivers the payload.
func TestARootsCopiesAreEncodedOnce(t *testing.T) {
	net := newMemNet()
	names := []string{"a", "b", "c", "d"}
	for _, name := range names {
		net.add(name)
	}
	root := &manyMemNode{memNode: net.nodes["a"]}
	log := newDeliveryLog()
	nodes := map[string]*Node{}
	for _, name := range names {
		var tr Transport = net.nodes[name]
		if name == "a" {
			tr = root
		}
		n, err := Start(tr, Options{TickInterval: 10 * time.Millisecond})
		require.NoError(t, err)
		s, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: log.deliver(name)})
		require.NoError(t, err)
		require.NoError(t, n.Register("app", s))
		nodes[name] = n
	}
	defer func() {
		for _, n := range nodes {
			require.NoError(t, n.Close())
		}
	}()
	for _, peer := range names[1:] {
		net.link("a", peer)
	}
	require.Eventually(t, func() bool {
		eager, _, err := nodes["a"].Peers("a")
		require.NoError(t, err)
		return len(eager) == 3
	}, 5*time.Second, time.Millisecond)

	require.NoError(t, nodes["a"].Broadcast("app", []byte("m1"), []byte("a large batch")))
	require.Eventually(t, func() bool {
		done, dups := log.complete(names[1:], map[string]string{"m1": "a"})
		require.Empty(t, dups)
		return done
	}, 5*time.Second, time.Millisecond)
	root.mu.Lock()
	defer root.mu.Unlock()
	require.Equal(t, [][]string{{"b", "c", "d"}}, root.calls, "one SendMany for the three copies")
}
