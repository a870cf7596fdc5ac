package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitIdle returns once w's pump waits with nothing to read.
func waitIdle(t *testing.T, w *Watch) {
	t.Helper()
	require.Eventually(t, func() bool {
		w.sub.j.mu.Lock()
		defer w.sub.j.mu.Unlock()
		return w.idle
	}, 5*time.Second, 100*time.Microsecond)
}

// TestAWatchKeepingUpHasEachChangeWhenJoinReturns: a watch whose reader
// keeps up gets each change on its channel from the append itself, before
// Join returns, instead of from its pump woken afterwards: on a busy
// machine that wake-up is a thread's, and a tail of the propagation
// latency. Two watches of one filter each get every change.
func TestAWatchKeepingUpHasEachChangeWhenJoinReturns(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	var watches []*Watch
	for _, filter := range []string{"/svc/*", "/svc/*", "/svc/a"} {
		w, err := s.Watch(filter, 0)
		require.NoError(t, err)
		defer w.Close()
		waitIdle(t, w)
		watches = append(watches, w)
	}
	for i := range 200 {
		id := fmt.Sprintf("m%d", i)
		require.NoError(t, s.Join("/svc/a", id, nil))
		for k, w := range watches {
			select {
			case ev := <-w.Events():
				require.Equal(t, id, ev.Member.ID, "watch %d", k)
				require.Equal(t, EventJoin, ev.Kind)
				require.False(t, ev.Applied.IsZero())
			default:
				t.Fatalf("watch %d: join %d is not on the channel when Join returns", k, i)
			}
		}
	}
}

// TestAWatchKeepsTheOrderBetweenItsPumpAndTheAppends: with a channel
// that fills, changes go by the pump, then by the appends again once the
// pump has caught up, and back, many times over: the reader still gets
// every change once, in order.
func TestAWatchKeepsTheOrderBetweenItsPumpAndTheAppends(t *testing.T) {
	// A journal that holds the whole run: the reader's pauses must make
	// it fall behind, never overflow.
	n, err := New(Config{Name: "n1", WatchBuffer: 1 << 16})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	w, err := s.Watch("/g", 4)
	require.NoError(t, err)
	defer w.Close()

	const joins = 3000
	var want []string
	for i := range joins {
		id := fmt.Sprintf("m%d", i)
		want = append(want, "join "+id)
		if i%3 == 0 {
			want = append(want, "leave "+id, "join "+id)
		}
	}
	got := make(chan []string, 1)
	go func() {
		var ids []string
		for ev := range w.Events() {
			ids = append(ids, fmt.Sprintf("%s %s", ev.Kind, ev.Member.ID))
			if len(ids)%97 == 0 {
				time.Sleep(200 * time.Microsecond) // falls behind now and then
			}
			if len(ids) == len(want) {
				break
			}
		}
		got <- ids
	}()
	for i := range joins {
		id := fmt.Sprintf("m%d", i)
		require.NoError(t, s.Join("/g", id, nil))
		require.NoError(t, s.Join("/other", id, nil))
		if i%3 == 0 {
			require.NoError(t, s.Leave("/g", id))
			require.NoError(t, s.Join("/g", id, nil))
		}
	}
	select {
	case ids := <-got:
		require.Equal(t, want, ids)
	case <-time.After(30 * time.Second):
		t.Fatal("the reader did not get every change within 30 s")
	}
	require.NoError(t, w.Err())
}

// TestManyWatchesOfOneFilterEachGetEveryChangeInOrder: past
// maxDirectSinks watches of a filter, appends wake the pumps instead of
// feeding the channels; when watches close and the rest are few enough
// again, appends feed them once more. Each watch gets every change once,
// in order, throughout.
func TestManyWatchesOfOneFilterEachGetEveryChangeInOrder(t *testing.T) {
	n, err := New(Config{Name: "n1", WatchBuffer: 1 << 16})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	const watches, joins = maxDirectSinks + 4, 600
	type reader struct {
		w   *Watch
		got chan []string
	}
	var readers []reader
	for k := range watches {
		w, err := s.Watch("/g", 8)
		require.NoError(t, err)
		defer w.Close()
		r := reader{w, make(chan []string, 1)}
		// The first half read the whole run; the others stop halfway
		// and close, leaving few enough watches for direct sends.
		want := joins
		if k >= watches/2 {
			want = joins / 2
		}
		go func() {
			var ids []string
			for ev := range w.Events() {
				ids = append(ids, ev.Member.ID)
				if len(ids) == want {
					break
				}
			}
			r.got <- ids
		}()
		readers = append(readers, r)
	}
	for i := range joins {
		require.NoError(t, s.Join("/g", fmt.Sprintf("m%d", i), nil))
		if i == joins/2-1 {
			for _, r := range readers[watches/2:] {
				ids := received(t, r.got)
				require.Len(t, ids, joins/2)
				r.w.Close()
			}
		}
	}
	for k, r := range readers[:watches/2] {
		ids := received(t, r.got)
		require.Len(t, ids, joins, "watch %d", k)
		for i, id := range ids {
			require.Equal(t, fmt.Sprintf("m%d", i), id, "watch %d", k)
		}
	}
}

// received waits for a reader's changes; a change lost on the way leaves
// the reader waiting for good.
func received(t *testing.T, got <-chan []string) []string {
	t.Helper()
	select {
	case ids := <-got:
		return ids
	case <-time.After(30 * time.Second):
		t.Fatal("a reader did not get its changes within 30 s")
		return nil
	}
}
