package registry

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// eventStrings reads what a subscription has pending as "kind group id".
func eventStrings(t *testing.T, sub *Subscription) []string {
	t.Helper()
	recs, err := sub.Next(nil)
	require.NoError(t, err)
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s %s %s", r.Kind, r.Group, r.Member.ID))
	}
	return out
}

// woken reports whether a channel Ready returned has been closed.
func woken(ready <-chan struct{}) bool {
	select {
	case <-ready:
		return true
	default:
		return false
	}
}

// A reader that reconnects after the last change it saw gets exactly the
// changes it missed: none twice, none lost.
func TestSubscriptionResumesWithExactlyTheMissedChanges(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	sub, err := s.Subscribe("/svc/*", SubscribeOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Join("/svc/a", "m1", nil))
	require.NoError(t, s.Join("/other", "x", nil))
	recs, err := sub.Next(nil)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	seen := recs[0].Seq
	sub.Close() // the connection is lost here

	require.NoError(t, s.Join("/svc/b", "m2", nil))
	require.NoError(t, s.Leave("/svc/a", "m1"))
	again, err := s.Subscribe("/svc/*", SubscribeOptions{Resume: true, After: seen})
	require.NoError(t, err)
	defer again.Close()
	require.Equal(t, []string{"join /svc/b m2", "leave /svc/a m1"}, eventStrings(t, again))
}

func TestResumeIsRefusedWhenTheChangesAreNotAllKept(t *testing.T) {
	n, err := New(Config{Name: "n1", WatchBuffer: 4})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	require.NoError(t, s.Join("/g", "before-any-watch", nil))
	sub, err := s.Subscribe("/g", SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	start := sub.Start()

	_, err = s.Subscribe("/g", SubscribeOptions{Resume: true, After: start + 1})
	require.ErrorIs(t, err, ErrResume, "a change not made yet")
	_, err = s.Subscribe("/g", SubscribeOptions{Resume: true, After: start - 1})
	require.ErrorIs(t, err, ErrResume, "a change from before the scope was watched")
	ok, err := s.Subscribe("/g", SubscribeOptions{Resume: true, After: start})
	require.NoError(t, err, "the latest change is a valid point to resume from")
	ok.Close()

	for i := range 10 {
		require.NoError(t, s.Join("/g", fmt.Sprint(i), nil))
	}
	_, err = s.Subscribe("/g", SubscribeOptions{Resume: true, After: start})
	require.ErrorIs(t, err, ErrResume, "six of the ten changes left the journal of four")
	tail, err := s.Subscribe("/g", SubscribeOptions{Resume: true, After: start + 6})
	require.NoError(t, err)
	defer tail.Close()
	require.Equal(t, []string{"join /g 6", "join /g 7", "join /g 8", "join /g 9"}, eventStrings(t, tail))
}

// The journal is per scope and counts every change of it, but a reader
// only overflows when a change it would have read is lost: a watcher of a
// quiet group in a busy scope never does.
func TestQuietWatcherOfABusyScopeDoesNotOverflow(t *testing.T) {
	n, err := New(Config{Name: "n1", WatchBuffer: 8})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	quiet, err := s.Subscribe("/quiet", SubscribeOptions{})
	require.NoError(t, err)
	defer quiet.Close()
	busy, err := s.Subscribe("/busy/*", SubscribeOptions{})
	require.NoError(t, err)
	defer busy.Close()
	for i := range 100 {
		require.NoError(t, s.Join("/busy/x", fmt.Sprint(i), nil))
	}
	require.NoError(t, s.Join("/quiet", "q", nil))
	require.Equal(t, []string{"join /quiet q"}, eventStrings(t, quiet))
	_, err = busy.Next(nil)
	require.ErrorIs(t, err, ErrWatchOverflow, "the busy reader lost 92 of its changes")
	_, err = busy.Next(nil)
	require.ErrorIs(t, err, ErrWatchOverflow, "an ended subscription keeps saying why")
}

// A change wakes only the readers whose filter selects it.
func TestReadyWakesOnlyMatchingReaders(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	sub, err := s.Subscribe("/a/*", SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	ready := sub.Ready()
	require.NoError(t, s.Join("/b", "m", nil))
	require.False(t, woken(ready), "a change of /b woke a reader of /a/*")
	require.NoError(t, s.Join("/a/x", "m", nil))
	require.True(t, woken(ready), "a change of /a/x did not wake a reader of /a/*")
	require.Equal(t, []string{"join /a/x m"}, eventStrings(t, sub))
}

// Readers of one pattern share its wait set: the one left after another
// closes is still woken, and a pattern no reader holds any more is dropped
// while the others keep waking theirs.
func TestPatternReadersAreWokenWhileTheirFilterIsHeld(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	subscribe := func(filter string) *Subscription {
		sub, err := s.Subscribe(filter, SubscribeOptions{})
		require.NoError(t, err)
		return sub
	}
	first, second, other := subscribe("/a/*"), subscribe("/a/*"), subscribe("/b/*")
	defer second.Close()
	defer other.Close()
	first.Close()
	ready := second.Ready()
	require.NoError(t, s.Join("/a/x", "m", nil))
	require.True(t, woken(ready), "closing one reader of /a/* left the other unwoken")
	require.Equal(t, []string{"join /a/x m"}, eventStrings(t, second))

	second.Close()
	j := s.idx.journal
	j.mu.Lock()
	filters := make([]string, 0, len(j.patterns))
	for _, ws := range j.patterns {
		filters = append(filters, ws.filter)
	}
	j.mu.Unlock()
	require.Equal(t, []string{"/b/*"}, filters, "a pattern no reader holds is still tried on every change")
	ready = other.Ready()
	require.NoError(t, s.Join("/b/y", "m", nil))
	require.True(t, woken(ready), "a change of /b/y did not wake the reader of /b/*")
	require.Equal(t, []string{"join /b/y m"}, eventStrings(t, other))
}

// A snapshot and the changes after it describe the group with no gap and
// no duplicate, however the joins and leaves of other goroutines interleave
// with the subscription.
func TestSnapshotThenChangesHaveNoGapUnderConcurrentJoins(t *testing.T) {
	n, err := New(Config{Name: "n1", WatchBuffer: 1 << 16})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	var wg sync.WaitGroup
	var started atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				id := fmt.Sprintf("w%d-%d", w, i%50)
				if i%3 == 2 {
					_ = s.Leave("/svc/x", id)
				} else {
					_ = s.Join("/svc/x", id, nil)
				}
				started.Add(1)
			}
		})
	}
	for started.Load() < 1000 {
		runtime.Gosched()
	}
	sub, err := s.Subscribe("/svc/*", SubscribeOptions{Snapshot: true})
	require.NoError(t, err)
	defer sub.Close()
	wg.Wait()

	counts := map[string]uint32{}
	for _, g := range sub.Snapshot() {
		for _, m := range g.Members {
			counts[m.ID] = m.Count
		}
	}
	recs, err := sub.Next(nil)
	require.NoError(t, err)
	for _, r := range recs {
		require.Greater(t, r.Seq, sub.Start())
		counts[r.Member.ID] = r.Member.Count
	}
	want := map[string]uint32{}
	g, err := s.Members("/svc/x")
	require.NoError(t, err)
	for _, m := range g.Members {
		want[m.ID] = m.Count
	}
	for id, c := range counts {
		if c == 0 {
			delete(counts, id)
		}
	}
	require.Equal(t, want, counts, "snapshot + changes = the final state")
}

// Every reader of a change shares one encoding of it.
func TestRecordEncodingIsSharedByEveryReader(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	var subs []*Subscription
	for range 100 {
		sub, err := s.Subscribe("/g", SubscribeOptions{})
		require.NoError(t, err)
		defer sub.Close()
		subs = append(subs, sub)
	}
	require.NoError(t, s.Join("/g", "m", nil))
	var encodings atomic.Int64
	encode := func(r *Record) []byte { encodings.Add(1); return []byte(r.Member.ID) }
	var firsts [][]byte
	for _, sub := range subs {
		recs, err := sub.Next(nil)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		firsts = append(firsts, recs[0].Encoded(encode))
	}
	require.Equal(t, int64(1), encodings.Load())
	for _, b := range firsts {
		require.Same(t, &firsts[0][0], &b[0], "one encoding, shared")
	}
}

func TestSubscriptionEndsAfterTheNodeClosesAndItsChangesAreRead(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	s := n.Default()
	sub, err := s.Subscribe("/g", SubscribeOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Join("/g", "m", nil))
	require.NoError(t, n.Close())
	<-sub.Ready()
	require.Equal(t, []string{"join /g m"}, eventStrings(t, sub))
	<-sub.Ready()
	_, err = sub.Next(nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.Subscribe("/g", SubscribeOptions{})
	require.ErrorIs(t, err, ErrClosed)
}
