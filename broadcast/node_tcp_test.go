package broadcast

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestNodeOverTCP runs 20 broadcast nodes over real membership nodes on
// loopback: 1,000 broadcasts from random sources, each delivered exactly
// once everywhere. It logs the relative message redundancy RMR = m/(n-1) - 1
// (m: payload messages received per broadcast) over all broadcasts and over
// those after every root's tree has formed.
func TestNodeOverTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("20 TCP nodes and 1,000 broadcasts: skipped in -short")
	}
	const n, broadcasts, warmup = 20, 1000, 100
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	before := goleak.IgnoreCurrent()
	overlay := make([]*membership.Node, n)
	defer func() {
		// A membership node leaves gracefully on Close; in parallel, the
		// twenty leaves take one node's time.
		var wg sync.WaitGroup
		for _, m := range overlay {
			if m != nil {
				wg.Go(func() { m.Close() })
			}
		}
		wg.Wait()
		// memberlist's probe goroutines outlive Shutdown until their
		// probe interval ends; wait for them rather than leak them into
		// later tests.
		deadline := time.Now().Add(10 * time.Second)
		for err := goleak.Find(before); err != nil; err = goleak.Find(before) {
			if time.Now().After(deadline) {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for i := range overlay {
		m, err := membership.Start(membership.NodeConfig{Name: fmt.Sprintf("tcp%02d", i), ClusterKey: key, Seed: int64(i + 1)})
		require.NoError(t, err)
		overlay[i] = m
	}
	began := time.Now()
	for i := 1; i < n; i++ {
		// Join through an earlier node; on a loaded machine a join can time
		// out, so try another contact.
		var err error
		for attempt := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = overlay[i].Join(ctx, overlay[(i*7+attempt)%i].GossipAddr())
			cancel()
			if err == nil {
				break
			}
		}
		require.NoError(t, err)
	}
	t.Logf("joined in %v", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	require.Eventually(t, func() bool { return overlayConnected(overlay) }, 30*time.Second, 50*time.Millisecond)
	t.Logf("overlay connected in %v", time.Since(began).Round(time.Millisecond))

	log := newDeliveryLog()
	nodes := map[string]*Node{}
	var names []string
	for _, m := range overlay {
		name := m.Self().Name
		node, err := Start(m, Options{})
		require.NoError(t, err)
		defer node.Close()
		s, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{Deliver: log.deliver(name)})
		require.NoError(t, err)
		require.NoError(t, node.Register("app", s))
		nodes[name] = node
		names = append(names, name)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	origin := map[string]string{}
	run := func(from, to int) {
		for k := from; k < to; k++ {
			src := names[rng.IntN(n)]
			if k < n {
				src = names[k] // every root broadcasts during the warm-up
			}
			id := fmt.Sprintf("%s-%d", src, k)
			origin[id] = src
			require.NoError(t, nodes[src].Broadcast("app", []byte(id), []byte(id)))
			time.Sleep(2 * time.Millisecond) // stay inside the transport's send queues
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			done, dups := log.complete(names, origin)
			require.Empty(t, dups)
			if done {
				break
			}
			if time.Now().After(deadline) {
				for _, name := range names {
					st, _ := nodes[name].Stats()
					eager, lazy, _ := nodes[name].Peers(names[0])
					log.mu.Lock()
					got := len(log.count[name])
					log.mu.Unlock()
					t.Logf("%s: delivered %d/%d eager=%v lazy=%v active=%d stats=%+v", name, got, len(origin), eager, lazy, len(overlayByName(overlay, name).Active()), st)
				}
				t.Fatal("not every broadcast was delivered everywhere")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := settled(t, nodes)
	began = time.Now()
	run(0, warmup)
	formed := settled(t, nodes)
	run(warmup, broadcasts)
	t.Logf("%d broadcasts sent and delivered everywhere in %v", broadcasts, time.Since(began).Round(time.Millisecond))
	end := settled(t, nodes)

	rmr := func(m uint64, count int) float64 { return float64(m)/float64(count)/float64(n-1) - 1 }
	r := repairs(t, nodes)
	t.Logf("n=%d broadcasts=%d: payload messages received %d, RMR %.4f overall; after the %d-broadcast warm-up %.4f (%.2f payloads per broadcast); grafts %d, optimisations %d, duplicates %d",
		n, broadcasts, end-start, rmr(end-start, broadcasts), warmup, rmr(end-formed, broadcasts-warmup),
		float64(end-formed)/float64(broadcasts-warmup), r.grafts, r.optimizations, r.duplicates)
	if !raceEnabled {
		require.Less(t, rmr(end-formed, broadcasts-warmup), 0.1, "once the trees have formed, payloads per broadcast are close to n-1")
	}
}

// overlayConnected reports whether the active views connect every node.
func overlayConnected(nodes []*membership.Node) bool {
	adj := map[string][]string{}
	for _, m := range nodes {
		for _, p := range m.Active() {
			adj[m.Self().Name] = append(adj[m.Self().Name], p.Name)
		}
	}
	seen := map[string]bool{nodes[0].Self().Name: true}
	frontier := []string{nodes[0].Self().Name}
	for len(frontier) > 0 {
		next := frontier[0]
		frontier = frontier[1:]
		for _, p := range adj[next] {
			if !seen[p] {
				seen[p] = true
				frontier = append(frontier, p)
			}
		}
	}
	return len(seen) == len(nodes)
}

func overlayByName(nodes []*membership.Node, name string) *membership.Node {
	for _, m := range nodes {
		if m.Self().Name == name {
			return m
		}
	}
	return nil
}
